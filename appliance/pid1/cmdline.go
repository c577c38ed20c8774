package pid1

import (
	"os"
	"strings"
)

// kernelParams returns the key=value parameters of the kernel command line.
func kernelParams(cmdline string) map[string]string {
	out := map[string]string{}
	for _, f := range strings.Fields(cmdline) {
		k, v, _ := strings.Cut(f, "=")
		out[k] = v
	}
	return out
}

func readCmdline() map[string]string {
	b, _ := os.ReadFile("/proc/cmdline")
	return kernelParams(string(b))
}
