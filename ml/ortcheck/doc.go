// Package ortcheck checks ml/engine against onnxruntime, the anchor for correctness and
// speed (issue #6). It is a separate Go module with its own go.mod because it needs cgo and
// onnxruntime's shared library (through github.com/yalue/onnxruntime_go, a thin cgo binding
// of onnxruntime's C API, pinned to v1.27.0): nothing here may reach anyad, which is built
// static with CGO_ENABLED=0.
//
// The library comes from npm's onnxruntime-node (`make deps-ort` installs it under
// out/ort); ANYA_ORT_LIB names another libonnxruntime.so. Without it the tests are skipped,
// or fail when ANYA_REQUIRE_ALL=1 (as in `make test`).
//
// Tests: TestAgreement compares outputs on the fee model and on two generated models (a
// ReLU MLP and a Tanh/Softmax classifier), float and QDQ int8. Benchmarks (`make bench-ml`):
// BenchmarkLatency runs both engines on one thread at batch 1 and 256 in the same run and
// reports ours/onnxruntime as "ratio"; BenchmarkLoad compares model load times.
package ortcheck
