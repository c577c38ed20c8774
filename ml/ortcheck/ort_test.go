package ortcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

var (
	ortOnce sync.Once
	ortErr  error
)

// libPath is ANYA_ORT_LIB, or the library `make deps-ort` installs.
func libPath() string {
	if p := os.Getenv("ANYA_ORT_LIB"); p != "" {
		return p
	}
	arch := map[string]string{"amd64": "x64", "arm64": "arm64"}[runtime.GOARCH]
	return filepath.Join("..", "..", "out", "ort", "node_modules", "onnxruntime-node", "bin", "napi-v6", "linux", arch, "libonnxruntime.so.1")
}

// needORT initialises onnxruntime once; without it the test is skipped, or fails when
// ANYA_REQUIRE_ALL=1.
func needORT(tb testing.TB) {
	tb.Helper()
	ortOnce.Do(func() {
		p := libPath()
		if _, err := os.Stat(p); err != nil {
			ortErr = err
			return
		}
		ort.SetSharedLibraryPath(p)
		ortErr = ort.InitializeEnvironment()
	})
	if ortErr != nil {
		if os.Getenv("ANYA_REQUIRE_ALL") == "1" {
			tb.Fatalf("onnxruntime is required (ANYA_REQUIRE_ALL=1; run make deps-ort): %v", ortErr)
		}
		tb.Skipf("onnxruntime not available (make deps-ort, or set ANYA_ORT_LIB): %v", ortErr)
	}
}

// ortSession is one onnxruntime session on one thread with fixed input and output tensors.
type ortSession struct {
	s   *ort.AdvancedSession
	in  *ort.Tensor[float32]
	out *ort.Tensor[float32]
}

func newORT(tb testing.TB, model []byte, batch, width, outWidth int) *ortSession {
	tb.Helper()
	s, err := newORTSession(model, batch, width, outWidth)
	if err != nil {
		tb.Fatalf("onnxruntime session: %v", err)
	}
	tb.Cleanup(s.destroy)
	return s
}

func newORTSession(model []byte, batch, width, outWidth int) (*ortSession, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options: %w", err)
	}
	defer opts.Destroy()
	for _, err := range []error{opts.SetIntraOpNumThreads(1), opts.SetInterOpNumThreads(1),
		opts.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableAll)} {
		if err != nil {
			return nil, fmt.Errorf("session options: %w", err)
		}
	}
	in, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(batch), int64(width)))
	if err != nil {
		return nil, fmt.Errorf("input tensor: %w", err)
	}
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(batch), int64(outWidth)))
	if err != nil {
		in.Destroy()
		return nil, fmt.Errorf("output tensor: %w", err)
	}
	s, err := ort.NewAdvancedSessionWithONNXData(model, []string{"x"}, []string{"y"}, []ort.Value{in}, []ort.Value{out}, opts)
	if err != nil {
		in.Destroy()
		out.Destroy()
		return nil, fmt.Errorf("create session: %w", err)
	}
	return &ortSession{s: s, in: in, out: out}, nil
}

func (o *ortSession) destroy() {
	o.s.Destroy()
	o.in.Destroy()
	o.out.Destroy()
}

// run copies x into the input tensor, runs, and returns the output (owned by the session).
func (o *ortSession) run(tb testing.TB, x []float32) []float32 {
	copy(o.in.GetData(), x)
	if err := o.s.Run(); err != nil {
		tb.Fatalf("onnxruntime run: %v", err)
	}
	return o.out.GetData()
}
