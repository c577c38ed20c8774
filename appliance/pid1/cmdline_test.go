package pid1

import "testing"

func TestKernelParams(t *testing.T) {
	p := kernelParams("BOOT_IMAGE=/vmlinuz console=ttyS0,115200 quiet anya.slot=b anya.static=10.0.0.2/24,10.0.0.1\n")
	for k, want := range map[string]string{"anya.slot": "b", "console": "ttyS0,115200", "anya.static": "10.0.0.2/24,10.0.0.1", "quiet": ""} {
		if got, ok := p[k]; !ok || got != want {
			t.Errorf("%s = %q (present %v), want %q", k, got, ok, want)
		}
	}
}
