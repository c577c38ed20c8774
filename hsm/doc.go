// Package hsm is the box's key custody: the wallet seed, sealed by the attached TPM 2.0 or
// YubiKey (PIV) or a passphrase so it never sits on disk in the clear, and the signer that uses
// it (issue #3). It keeps its state through package storage and knows nothing of HTTP or PID 1.
package hsm
