// Package sealtest is the conformance suite every [seal.Sealer] provider must pass.
//
// A provider's test calls [Run] with a constructor, a valid [seal.Auth] and a wrong one:
//
//	func TestConformance(t *testing.T) {
//		sealtest.Run(t, func(t *testing.T) seal.Sealer { return newProvider(t) },
//			seal.Auth{PIN: "1234"}, seal.Auth{PIN: "0000"})
//	}
//
// newSealer is called once per subtest (so a provider backed by a device may start a fresh
// simulator for each) and must register its own cleanup with t.Cleanup. Every subtest seals its
// own blobs with the sealer it got, so a blob never has to move between two sealers.
//
// The suite checks, as subtests:
//   - RoundTrip: 16, 32 and 64-byte secrets come back byte for byte;
//   - DistinctBlobs: two seals of the same secret give different blobs;
//   - WrongAuth: Unseal with the wrong Auth fails with [seal.ErrWrongAuth] (skipped with [NoAuth]);
//   - Corruption: every single-bit flip of Blob.Data, every truncation and a trailing extra byte
//     fail with [seal.ErrCorrupt] — or [seal.ErrWrongAuth] for providers declared with
//     [CorruptMayBeWrongAuth], which cannot tell a damaged blob from a wrong passphrase — never
//     panic, never return data, and never echo the secret in the error text; a wrong
//     Blob.Version is [seal.ErrCorrupt] as well;
//   - WrongKind: a blob whose Kind names another provider (or none) fails with [seal.ErrWrongKind];
//   - JSON: a blob survives encoding/json and still unseals;
//   - SecretNotRetained: overwriting the caller's secret (and auth buffers) after Seal does not
//     change what Unseal returns, and the slice Unseal returns is the caller's own;
//   - Concurrent: several goroutines Seal and Unseal at once on one sealer.
//
// Why a shared suite: the callers (setup, unlock, backup) only see [seal.Sealer] and its
// errors, so what they may rely on — errors.Is on the seal errors, no panic or secret on a
// damaged blob, blobs that survive JSON, no aliasing of the caller's buffers, concurrency — is
// written down once, here, and every provider (passphrase, hsm/tpm, hsm/piv) runs it.
package sealtest
