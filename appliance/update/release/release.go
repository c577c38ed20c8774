package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"io"
	"time"
)

// Release is a release whose metadata verified. Its payloads are not yet read: Open streams
// each one and checks it.
type Release struct {
	Version        string // release version string
	Counter        uint64 // monotonic release counter
	MinFrom        uint64 // lowest installed counter it may update from (0: any)
	MinFromVersion string // MinFrom's version string, if the signer gave it
	Arch           string

	// Payloads are this architecture's payloads, one of each Kind, in bundle order (Kinds).
	Payloads []Payload
	// Manifest is the verified release.json payload.
	Manifest []byte

	// Expires is the earliest expiry of the metadata that verified this release; Issued the
	// timestamp's signing time (zero if it has none).
	Expires, Issued time.Time
	// Versions of the metadata that verified this release.
	RootVersion, TimestampVersion, SnapshotVersion, TargetsVersion int64

	src        Fetcher
	consistent bool
}

// Payload is one signed file of a release.
type Payload struct {
	Kind   Kind
	Path   string // TUF target path, "<arch>/<file name>"
	Length int64
	SHA256 [sha256.Size]byte
}

// File is the payload's bundle path (see PayloadFile).
func (p Payload) File(consistent bool) string {
	if !consistent {
		return TargetsDir + "/" + p.Path
	}
	return PayloadFile(p.Path, hex.EncodeToString(p.SHA256[:]))
}

// Payload returns the payload of kind k.
func (r *Release) Payload(k Kind) (Payload, bool) {
	for _, p := range r.Payloads {
		if p.Kind == k {
			return p, true
		}
	}
	return Payload{}, false
}

// String names the release for people: "1.4.0 (#12)".
func (r *Release) String() string { return formatCounter(r.Version, r.Counter) }

// Open streams the payload of kind k from the release's source. The reader hashes what it
// returns; it returns io.EOF only after exactly the signed length was read and the SHA-256
// matched. Any other end (too short, too long, a different hash, a read error) is an error
// (ReasonPayloadMismatch, or ReasonUnavailable when the source failed), so io.Copy from it
// returns nil only for a verified payload.
//
// The bytes come out before the verdict: the caller writes them into the inactive slot as they
// come and must not make the slot bootable unless the reader reached io.EOF (Verified). A
// payload longer than signed is refused as soon as the first surplus byte arrives, without
// returning it.
//
// With a tar source, payloads should be opened in the order of Payloads. KindRelease is served
// from the verified Manifest without reading the source again.
func (r *Release) Open(ctx context.Context, k Kind) (*PayloadReader, error) {
	p, ok := r.Payload(k)
	if !ok {
		return nil, refuse(ReasonPayloadUnknown, string(k), "the release has no %s payload", k)
	}
	if k == KindRelease && r.Manifest != nil {
		return newPayloadReader(ctx, p, io.NopCloser(bytes.NewReader(r.Manifest))), nil
	}
	return r.open(ctx, p)
}

func (r *Release) open(ctx context.Context, p Payload) (*PayloadReader, error) {
	rc, err := r.src.Fetch(ctx, p.File(r.consistent))
	if err != nil {
		return nil, sourceError(ctx, p.Path, ReasonPayloadUnknown, err)
	}
	return newPayloadReader(ctx, p, rc), nil
}

// PayloadReader reads a payload and checks its length and hash. See Release.Open.
type PayloadReader struct {
	ctx      context.Context
	p        Payload
	rc       io.ReadCloser
	h        hash.Hash
	n        int64
	err      error // sticky: io.EOF when verified
	verified bool
}

func newPayloadReader(ctx context.Context, p Payload, rc io.ReadCloser) *PayloadReader {
	return &PayloadReader{ctx: ctx, p: p, rc: rc, h: sha256.New()}
}

// Payload is the payload being read.
func (r *PayloadReader) Payload() Payload { return r.p }

// Read reads from the payload. See Release.Open for what its errors mean.
func (r *PayloadReader) Read(b []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(b) == 0 {
		return 0, nil
	}
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	rem := r.p.Length - r.n
	if int64(len(b)) > rem+1 {
		b = b[:rem+1] // one byte more than is left shows a payload that is too long
	}
	n, err := r.rc.Read(b)
	if int64(n) > rem {
		n = int(rem)
		r.h.Write(b[:n])
		r.n += int64(n)
		r.err = refuse(ReasonPayloadMismatch, r.p.Path, "longer than the signed %d bytes", r.p.Length)
		return n, r.err
	}
	r.h.Write(b[:n])
	r.n += int64(n)
	switch {
	case err == io.EOF:
		r.err = r.finish()
		return n, r.err
	case err != nil:
		r.err = sourceError(r.ctx, r.p.Path, ReasonUnavailable, err)
		return n, r.err
	}
	return n, nil
}

func (r *PayloadReader) finish() error {
	if r.n != r.p.Length {
		return refuse(ReasonPayloadMismatch, r.p.Path, "truncated: %d of the signed %d bytes", r.n, r.p.Length)
	}
	if subtle.ConstantTimeCompare(r.h.Sum(nil), r.p.SHA256[:]) != 1 {
		return refuse(ReasonPayloadMismatch, r.p.Path, "SHA-256 differs from the signed hash")
	}
	r.verified = true
	return io.EOF
}

// Verified reports whether the whole payload was read and matched its signed length and hash.
func (r *PayloadReader) Verified() bool { return r.verified }

// Close closes the source's reader.
func (r *PayloadReader) Close() error { return r.rc.Close() }
