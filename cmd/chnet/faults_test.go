package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// faultEnv makes the child process (childEnv) signal itself at a named point of the training
// loop (train.Trainer.Hook): "POINT#N:SIG" sends SIG at the N-th time POINT is reached, e.g.
// "validate#1:TERM" (Ctrl-C's twin during the first validation) or
// "save checkpoint_final.safetensors#1:KILL" (killed just as the final checkpoint is written).
// After SIGTERM or SIGINT the hook waits for the run to see it; after SIGKILL nothing runs on.
// Two more actions: WAIT blocks the run there for good (to be killed by the test), and KILLMID,
// at a "save" point, lets the save start and SIGKILLs the process once the save's temporary
// file in the --out folder holds data: killed in the middle of writing a checkpoint.
const faultEnv = "CHNET_TEST_FAULT"

// fsizeEnv caps the size of every file the child writes (RLIMIT_FSIZE): a write past it fails
// with EFBIG, as one on a full disk fails with ENOSPC.
const fsizeEnv = "CHNET_TEST_FSIZE"

func setChildFaults() {
	if v := os.Getenv(fsizeEnv); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err == nil {
			err = syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: n})
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s=%s: %v\n", fsizeEnv, v, err)
			os.Exit(2)
		}
	}
	spec := os.Getenv(faultEnv)
	if spec == "" {
		return
	}
	at, sigName, ok := strings.Cut(spec, ":")
	point, nth, ok2 := strings.Cut(at, "#")
	n, err := strconv.Atoi(nth)
	sig, ok3 := map[string]syscall.Signal{"TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "KILL": syscall.SIGKILL, "HUP": syscall.SIGHUP, "WAIT": 0, "KILLMID": 0}[sigName]
	if !ok || !ok2 || !ok3 || err != nil {
		fmt.Fprintf(os.Stderr, "bad %s=%q\n", faultEnv, spec)
		os.Exit(2)
	}
	seen := 0
	trainHook = func(ctx context.Context, p string) {
		if p != point {
			return
		}
		if seen++; seen != n {
			return
		}
		switch sigName {
		case "WAIT":
			fmt.Fprintf(os.Stderr, "fault: waiting at %s\n", p)
			select {}
		case "KILLMID":
			go killWhenTempWritten(strings.TrimPrefix(p, "save "))
			return
		}
		syscall.Kill(os.Getpid(), sig)
		if sig == syscall.SIGKILL {
			select {}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Minute):
			fmt.Fprintln(os.Stderr, "the signal did not stop the run")
			os.Exit(3)
		}
	}
}

// killWhenTempWritten SIGKILLs this process once the temporary of an atomic write of name in
// the --out folder holds data.
func killWhenTempWritten(name string) {
	out := ""
	for i, a := range os.Args {
		if (a == "--out" || a == "-o") && i+1 < len(os.Args) {
			out = os.Args[i+1]
		}
	}
	for {
		temps, _ := filepath.Glob(filepath.Join(out, "."+name+".tmp-*"))
		for _, p := range temps {
			if st, err := os.Stat(p); err == nil && st.Size() > 0 {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// childRun runs the chnet command as a child process (optionally with a fault) and returns
// its exit status, stderr and whether a signal ended it.
func childRun(t *testing.T, fault string, args ...string) (code int, stderr string, signaled bool) {
	t.Helper()
	return childRunEnv(t, []string{faultEnv + "=" + fault}, args...)
}

// childRunEnv is childRun with extra environment variables.
func childRunEnv(t *testing.T, env []string, args ...string) (code int, stderr string, signaled bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"--backend", "cpu"}, args...)...)
	cmd.Env = append(append(os.Environ(), childEnv+"=1"), env...)
	var errb strings.Builder
	cmd.Stderr = &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("chnet %v: still running after 3 minutes (hung?)\n%s", args, errb.String())
	}
	checkFlagNames(t, args, errb.String())
	if err == nil {
		return 0, errb.String(), false
	}
	ee, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatalf("run %v: %v", args, err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, errb.String(), true
	}
	return ee.ExitCode(), errb.String(), false
}

// The runs' common arguments: 3 training images (2 batches), 1 validation image, 2 test
// images, 32 px, one epoch — the smallest run that validates, keeps a best checkpoint,
// finishes and tests.
func tinyRunArgs(t *testing.T) func(out string) []string {
	dataDir, testDir := tinyData(t, 4, 32, 11), tinyData(t, 2, 32, 12)
	return func(out string) []string {
		return []string{"train", "--data", dataDir, "--test", testDir, "--out", out, "--epochs", "1", "--batch-size", "2",
			"--size", "32", "--sizes", "32", "--val-fraction", "0.25", "--seed", "4"}
	}
}

// Ctrl-C (here SIGTERM) during validation, and SIGKILL just as checkpoint_best or
// checkpoint_final is written (issue 9, cases 1, 3, 4): the resumed run finishes, writes every
// checkpoint, runs the tests, and its weights equal an uninterrupted run's bit for bit.
func TestSignalsAtEpochEndAndKillsAtCheckpoints(t *testing.T) {
	args := tinyRunArgs(t)
	ref := filepath.Join(t.TempDir(), "ref")
	if code, stderr, _ := childRun(t, "", args(ref)...); code != 0 {
		t.Fatalf("uninterrupted run: exit %d\n%s", code, stderr)
	}
	want := readTensors(t, filepath.Join(ref, "checkpoint_final.safetensors"))
	for _, tc := range []struct {
		fault  string
		killed bool
		repair string // a line the resumed run must log
	}{
		{fault: "validate#1:TERM"},
		// A closed terminal (SIGHUP) mid-epoch saves the position as Ctrl-C does (issue 11,
		// point 10: it killed the run and lost the partial epoch).
		{fault: "step#1:HUP"},
		{fault: "save checkpoint_best.safetensors#1:KILL", killed: true, repair: "repaired checkpoint_best.safetensors"},
		{fault: "save checkpoint_final.safetensors#1:KILL", killed: true, repair: "repaired checkpoint_final.safetensors"},
		// Killed half-way through writing checkpoint_latest (issue 9, case 9): the temporary is
		// removed when the run is resumed.
		{fault: "save checkpoint_latest.safetensors#1:KILLMID", killed: true, repair: ".checkpoint_latest.safetensors.tmp-"},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			code, stderr, signaled := childRun(t, tc.fault, args(out)...)
			switch {
			case tc.killed && !signaled:
				t.Fatalf("expected the run to be killed; exit %d\n%s", code, stderr)
			case !tc.killed && code != exitInterrupted:
				t.Fatalf("interrupted run: exit %d, want %d\n%s", code, exitInterrupted, stderr)
			}
			temps, _ := filepath.Glob(filepath.Join(out, ".*.tmp-*"))
			if strings.Contains(tc.fault, "KILLMID") && len(temps) != 1 {
				t.Fatalf("the killed write left temporaries %v, want one", temps)
			}
			code, stderr, _ = childRun(t, "", "train", "--out", out, "--resume")
			if code != 0 {
				t.Fatalf("resumed run: exit %d\n%s", code, stderr)
			}
			if tc.repair != "" && !strings.Contains(stderr, tc.repair) {
				t.Errorf("resumed run does not say %q:\n%s", tc.repair, stderr)
			}
			if left, _ := filepath.Glob(filepath.Join(out, ".*.tmp-*")); len(left) > 0 {
				t.Errorf("temporaries left after resuming: %v", left)
			}
			for _, f := range []string{"checkpoint_best.safetensors", "checkpoint_final.safetensors", "test/data/metrics.json"} {
				if _, err := os.Stat(filepath.Join(out, f)); err != nil {
					t.Errorf("after resuming: %v", err)
				}
			}
			got := readTensors(t, filepath.Join(out, "checkpoint_final.safetensors"))
			if len(got) != len(want) {
				t.Fatalf("final holds %d tensors, uninterrupted %d", len(got), len(want))
			}
			for k, w := range want {
				for i := range w {
					if got[k][i] != w[i] {
						t.Fatalf("%s[%d]: resumed %v, uninterrupted %v", k, i, got[k][i], w[i])
					}
				}
			}
		})
	}
}

// Two runs on one folder once both went ahead, mixing config, splits, log and checkpoints, and
// the "already holds a run" guard missed --folds runs (issue 9, case 5).
func TestRunFolderIsLocked(t *testing.T) {
	args := tinyRunArgs(t)
	out := filepath.Join(t.TempDir(), "run")
	// The first run stops for good in its first step, holding the folder.
	cmd := exec.Command(os.Args[0], append([]string{"--backend", "cpu"}, args(out)...)...)
	cmd.Env = append(os.Environ(), childEnv+"=1", faultEnv+"=step#1:WAIT")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(out, "splits.json")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first run never started")
		}
	}
	for _, second := range [][]string{args(out), {"train", "--out", out, "--resume"}} {
		code, _, stderr := runCLI(t, second...)
		if code != exitUsage || !strings.Contains(stderr, "in use by another chnet process") || !strings.Contains(stderr, "--out") {
			t.Errorf("%v while another run holds the folder: exit %d, %q", second, code, stderr)
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	// Killed in its first step, the run has config.json but no checkpoint yet: starting anew
	// there is refused, resuming is the way on. The same with --folds.
	code, _, stderr := runCLI(t, args(out)...)
	if code != exitUsage || !strings.Contains(stderr, "--resume") {
		t.Errorf("a new run on a killed run's folder: exit %d, %q", code, stderr)
	}
	folds := filepath.Join(t.TempDir(), "folds")
	fa := append(args(folds), "--folds", "2")
	for i, a := range fa {
		if a == "--val-fraction" {
			fa = append(fa[:i:i], fa[i+2:]...)
			break
		}
	}
	if code, stderr, _ := childRun(t, "step#1:KILL", fa...); code != -1 {
		t.Fatalf("folds run: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := runCLI(t, fa...); code != exitUsage || !strings.Contains(stderr, "already holds a run") {
		t.Errorf("a new --folds run on a --folds run's folder: exit %d, %q", code, stderr)
	}
}

// A full disk (here a file-size limit: EFBIG where a full disk gives ENOSPC) exited 1 (issue 9,
// case 10). It exits 74 naming the file, leaves the previous checkpoint as it was and no
// temporary behind, and the run resumes once there is room.
func TestFullDiskExits74KeepingTheCheckpoint(t *testing.T) {
	args := tinyRunArgs(t)
	noRoom := []string{fsizeEnv + "=" + strconv.Itoa(16<<20)} // files may not exceed 16 MB
	// Killed just before checkpoint_best is written: latest (finished) is there, best is not.
	// Resuming rebuilds best as a link to latest (issue 11, point 10), which needs no room.
	linked := filepath.Join(t.TempDir(), "run")
	if _, stderr, signaled := childRun(t, "save checkpoint_best.safetensors#1:KILL", args(linked)...); !signaled {
		t.Fatalf("the run was not killed:\n%s", stderr)
	}
	if code, stderr, _ := childRunEnv(t, noRoom, "train", "--out", linked, "--resume"); code != 0 || !strings.Contains(stderr, "repaired checkpoint_best") {
		t.Fatalf("resume that only repairs best, with no room: exit %d, want 0\n%s", code, stderr)
	}
	// Stopped (SIGTERM) in validation: resuming writes checkpoint_latest, a 35 MB write.
	out := filepath.Join(t.TempDir(), "run")
	if code, stderr, _ := childRun(t, "validate#1:TERM", args(out)...); code != exitInterrupted {
		t.Fatalf("the run was not interrupted: exit %d\n%s", code, stderr)
	}
	latest := filepath.Join(out, "checkpoint_latest.safetensors")
	before, err := os.ReadFile(latest)
	if err != nil {
		t.Fatal(err)
	}
	code, stderr, _ := childRunEnv(t, noRoom, "train", "--out", out, "--resume")
	if code != exitIO || !strings.Contains(stderr, latest) {
		t.Fatalf("resume with no room: exit %d, want %d naming checkpoint_latest\n%s", code, exitIO, stderr)
	}
	if after, err := os.ReadFile(latest); err != nil || !bytes.Equal(after, before) {
		t.Errorf("checkpoint_latest changed by the failed run (%v)", err)
	}
	if left, _ := filepath.Glob(filepath.Join(out, ".*.tmp-*")); len(left) > 0 {
		t.Errorf("temporaries left: %v", left)
	}
	if code, stderr, _ := childRun(t, "", "train", "--out", out, "--resume"); code != 0 {
		t.Fatalf("resume with room: exit %d\n%s", code, stderr)
	}
}

// A run stuck where it does not look at its context (a read that never returns; here a hook
// that blocks) ignored SIGINT and SIGTERM for good (issue 9, case 8). The first signal asks it
// to stop; the second ends it at once with exit 130.
func TestSecondSignalStopsAStuckRun(t *testing.T) {
	args := tinyRunArgs(t)
	cmd := exec.Command(os.Args[0], append([]string{"--backend", "cpu"}, args(filepath.Join(t.TempDir(), "run"))...)...)
	cmd.Env = append(os.Environ(), childEnv+"=1", faultEnv+"=step#1:WAIT")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitFor := func(what string) {
		t.Helper()
		timeout := time.After(2 * time.Minute)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the run ended before saying %q", what)
				}
				if strings.Contains(l, what) {
					return
				}
			case <-timeout:
				t.Fatalf("the run never said %q", what)
			}
		}
	}
	waitFor("fault: waiting at step")
	cmd.Process.Signal(syscall.SIGINT)
	waitFor("stopping at the next safe point")
	cmd.Process.Signal(syscall.SIGINT)
	exited := make(chan error, 1)
	go func() {
		for range lines {
		}
		exited <- cmd.Wait()
	}()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
			t.Fatalf("after the second SIGINT: %v, want exit %d", err, exitInterrupted)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("still running 30 s after the second SIGINT")
	}
}
