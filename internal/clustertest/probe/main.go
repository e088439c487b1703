// Command groupd-probe is built into the test cluster's node image. The
// cluster-tier tests run it inside the containers to see corosync through
// this project's cpg and cman packages.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "groupd-probe: not implemented yet")
	os.Exit(2)
}
