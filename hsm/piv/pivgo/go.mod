module github.com/go-piv/piv-go/v2

go 1.25.0

require golang.org/x/crypto v0.50.0
