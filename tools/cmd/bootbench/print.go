package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// print writes the summary table: medians over the successful boots, the anya/anchor ratio and
// the product's targets (from shared/notes/boot.md).
func (r *report) print(w io.Writer) {
	a, g := &r.Anya, r.Anchor
	fmt.Fprintf(w, "\nbootbench %s: %d runs, %s, TCG, 2 vCPUs, 512 MiB, %d host CPUs\n\n",
		r.Started.Format("2006-01-02 15:04"), r.Runs, r.QEMU, r.HostCPUs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintln(tw, "median\tanya\tanchor\tanya/anchor\ttarget")
	row := func(name string, x, y float64, format, target string) {
		cells := []string{name, num(format, x), "", "", target}
		if g != nil && y >= 0 { // y < 0: not measured on the anchor
			cells[2] = num(format, y)
			if x > 0 && y > 0 {
				cells[3] = fmt.Sprintf("%.2f", x/y)
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	var gm *side
	if g != nil {
		gm = g
	} else {
		gm = &side{}
	}
	row("QEMU start → HTTP 200 (s)", a.Median.HTTPSeconds, gm.Median.HTTPSeconds, "%.1f", "ratio ≤ 0.80")
	row("QEMU start → ANYA-READY (s)", a.Median.ReadySeconds, -1, "%.1f", "")
	row("kernel → page ready, boot_ms", float64(a.Median.BootMS), -1, "%.0f", "")
	row("PID 1 → page ready, init_ms", float64(a.Median.InitMS), -1, "%.0f", "< 150")
	row("update payload (MB)", mb(a.Payload.Total), mb(gm.Payload.Total), "%.1f", "< 30")
	fmt.Fprintf(tw, "  parts (MB)\tk %.1f + i %.1f + s %.1f\t", mb(a.Payload.Kernel), mb(a.Payload.Initramfs), mb(a.Payload.System))
	if g != nil {
		fmt.Fprintf(tw, "boot %.1f + root %.1f", mb(g.Payload.BootFAT), mb(g.Payload.RootSquash))
	}
	fmt.Fprintln(tw, "\t\t")
	row("anyad binary (MB)", mb(a.Payload.Anyad), -1, "%.1f", "")
	var am, gmm memoryReport
	if a.Memory != nil {
		am = *a.Memory
	}
	if gm.Memory != nil {
		gmm = *gm.Memory
	}
	row("RSS of PID 1 (MiB)", mib(pid1RSS(am)), mib(pid1RSS(gmm)), "%.1f", "")
	row("RSS of anyad, all processes (MiB)", mib(am.RSSTotal), -1, "%.1f", "< 64")
	row("guest memory used (MiB)", mib(am.GuestUsed), mib(gmm.GuestUsed), "%.1f", "< 128")
	ok := func(s *side) string {
		return fmt.Sprintf("%d/%d", len(s.Boots)-s.Failed, len(s.Boots))
	}
	fmt.Fprintf(tw, "boots ok\t%s\t", ok(a))
	if g != nil {
		fmt.Fprint(tw, ok(g))
	}
	fmt.Fprintln(tw, "\t\t")
	tw.Flush()
	shared := false
	for _, s := range []*side{a, g} {
		if s == nil {
			continue
		}
		name := "anya"
		if s == g {
			name = "anchor"
		}
		fmt.Fprintf(w, "%-7s HTTP s per boot:", name)
		for _, b := range s.Boots {
			if b.Error != "" {
				fmt.Fprintf(w, " FAILED(%s)", b.Error)
			} else {
				fmt.Fprintf(w, " %.1f", b.HTTPSeconds)
			}
			if b.OtherQEMU {
				fmt.Fprint(w, "*")
				shared = true
			}
		}
		fmt.Fprintln(w)
	}
	if shared {
		fmt.Fprintln(w, "* another QEMU process ran on the host during this boot: its timing is skewed")
	}
	if g != nil && g.Build != nil {
		fmt.Fprintf(w, "anchor: gokrazy %s, kernel.amd64 %s, gok %s\n", g.Build.Gokrazy, g.Build.Kernel, g.Build.Tools)
	}
}

func pid1RSS(m memoryReport) uint64 {
	for _, p := range m.Processes {
		if p.PID == 1 {
			return p.RSSBytes
		}
	}
	return 0
}

func num(format string, x float64) string {
	if x == 0 {
		return "-"
	}
	return fmt.Sprintf(format, x)
}

func mb(n int64) float64 { return float64(n) / 1e6 }

func mib(n uint64) float64 { return float64(n) / (1 << 20) }
