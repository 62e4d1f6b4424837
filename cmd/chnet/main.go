// Command chnet trains, evaluates and benchmarks CHNet and its baselines on the CPU or on any
// Vulkan GPU. Run `chnet help` for the commands.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

func main() {
	os.Exit(run(os.Args))
}

// run builds the app, runs it and maps its error to an exit code (exit.go).
func run(args []string) int {
	app := newApp()
	err := app.Run(args)
	if err == nil {
		return 0
	}
	fmt.Fprintf(app.ErrWriter, "chnet: %s\n", message(err))
	return exitCode(err)
}

func newApp() *cli.App {
	app := &cli.App{
		Name:                 "chnet",
		Usage:                "train, evaluate and benchmark CHNet medical image segmentation on the CPU or a Vulkan GPU",
		Version:              version(),
		EnableBashCompletion: true,
		Suggest:              true,
		Flags:                backendFlags(),
		Commands: []*cli.Command{
			trainCommand(), testCommand(), evalCommand(), predictCommand(), benchCommand(), experimentCommand(), convertCommand(), devicesCommand(), versionCommand(),
		},
		ErrWriter: newStderr(),
		// Errors are printed once by run, with the exit code chosen there.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageErr(err)
		},
	}
	addGlobalFlags(app.Commands)
	markActions(app.Commands)
	return app
}
