module github.com/anya-edge/anya/ml/ortcheck

go 1.26.8

require github.com/anya-edge/anya v0.0.0-00010101000000-000000000000

require (
	github.com/yalue/onnxruntime_go v1.27.0
	golang.org/x/sys v0.50.0 // indirect
	google.golang.org/protobuf v1.36.11 // indirect
)

replace github.com/anya-edge/anya => ../..
