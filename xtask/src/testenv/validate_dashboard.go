// Validates Grafana dashboard JSON files with the grafana-foundation-sdk's generated types:
// strict decoding (an unknown or mistyped field is an error, panel options decoded by each
// panel plugin's own type) and the types' own validation. Built by `cargo xtask` under its cache
// dir; prints one line per file and exits non-zero on the first invalid one.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

func main() {
	plugins.RegisterDefaultPlugins()
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: validate-dashboard FILE...")
		os.Exit(2)
	}
	for _, path := range os.Args[1:] {
		raw, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		var d dashboard.Dashboard
		if err := failed(d.UnmarshalJSONStrict(raw)); err != nil {
			fmt.Fprintf(os.Stderr, "%s: not a valid dashboard: %v\n", path, err)
			os.Exit(1)
		}
		if err := failed(d.Validate()); err != nil {
			fmt.Fprintf(os.Stderr, "%s: invalid: %v\n", path, err)
			os.Exit(1)
		}
		fmt.Printf("%s: valid (%d panels)\n", path, len(d.Panels))
	}
}

// failed is err unless it is an empty list of build errors: the SDK returns its list typed, so
// "no error" arrives as a non-nil error holding an empty list.
func failed(err error) error {
	var list cog.BuildErrors
	if errors.As(err, &list) && len(list) == 0 {
		return nil
	}
	return err
}
