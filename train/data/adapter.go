package data

import (
	"context"
	"io"

	"github.com/chnet/chnet/train"
)

// TrainData adapts a Loader to train.TrainData, the trainer's view of training data.
type TrainData struct{ *Loader }

var _ train.TrainData = TrainData{}

// BatchesPerEpoch is the number of batches in every epoch.
func (d TrainData) BatchesPerEpoch() int { return d.Batches() }

// Epoch starts epoch e at batch from.
func (d TrainData) Epoch(ctx context.Context, epoch, from int) (train.BatchIter, error) {
	it, err := d.Loader.Epoch(ctx, d.StateAt(epoch, from))
	if err != nil {
		return nil, err
	}
	return trainIter{it}, nil
}

type trainIter struct{ it *Iterator }

func (t trainIter) Next() (train.Batch, bool, error) {
	b, err := t.it.Next()
	if err != nil {
		if err == io.EOF {
			return train.Batch{}, false, nil
		}
		return train.Batch{}, false, err
	}
	return train.Batch{Images: b.Images, Masks: b.Masks, N: b.N, Size: b.Size}, true, nil
}

func (t trainIter) Close() { t.it.Close() }
