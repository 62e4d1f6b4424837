package metrics

// definitions say in one line what each Dice-like value is, by the name it is written under:
// two numbers called "Dice" once disagreed for the same image in one run folder (issue 11,
// point 5), a raw map thresholded at 0.5 and PySODMetrics' min-max normalised one.
var definitions = map[Convention]map[string]string{
	PySOD: {
		"meandice":      "PySODMetrics: Dice at each of the 256 thresholds of the 8-bit map (min-max normalised per image), averaged over images, then over thresholds",
		"maxdice":       "PySODMetrics: the highest of those 256 threshold-wise dataset means",
		"adpdice":       "PySODMetrics: Dice at the adaptive threshold min(2·mean of the normalised map, 1), per image, averaged",
		"sample_bidice": "PySODMetrics: the map min-max normalised per image, then > 0.5; Dice of that mask per image, averaged (per_image.csv: per image)",
	},
	MATLAB: {
		"meanDic": "PraNet's MATLAB toolbox: Dice at each of 256 thresholds of the map (min-max normalised per image), averaged over images, then over thresholds",
	},
	CHNet: {
		"M_dice": "CHNet's eval.py: soft Dice 2Σpg/(Σp+Σg) of the continuous map (min-max normalised per image), no threshold",
	},
}

// Definition is the one-line definition of a value named key under convention c, or "".
func Definition(c Convention, key string) string {
	return definitions[c][key]
}
