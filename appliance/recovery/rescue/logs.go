package rescue

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/anya-edge/anya/storage"
)

// ExportLogs writes the log lines and a report (any JSON-encodable value: the data check,
// the disk) to dir/anya-logs-<time>.txt on the stick, atomically, and returns its path.
func ExportLogs(dir string, now time.Time, lines []string, report any) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("export logs: %w", err)
	}
	name := filepath.Join(dir, "anya-logs-"+now.UTC().Format("20060102T150405Z")+".txt")
	err := storage.WriteFileAtomic(name, func(w io.Writer) (int64, error) {
		cw := &countWriter{w: w}
		fmt.Fprintf(cw, "Anya Edge recovery log export, %s\n\n", now.UTC().Format(time.RFC3339))
		if report != nil {
			b, _ := json.MarshalIndent(report, "", "  ")
			fmt.Fprintf(cw, "%s\n\n", b)
		}
		for _, l := range lines {
			fmt.Fprintln(cw, l)
		}
		return cw.n, cw.err
	})
	if err != nil {
		return "", fmt.Errorf("export logs: %w", err)
	}
	return name, nil
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}
