package storage

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strconv"

	"go.etcd.io/bbolt"
)

// Errors of ExportSubsystems, ReadExport and ImportSubsystems (wrapped, with details in the
// message). A newer schema is reported with ErrSchemaTooNew, as by Migrate.
var (
	// ErrBadExport: the stream is not an export, is damaged (its trailing SHA-256 does not
	// match), is cut short, or breaks the format's rules.
	ErrBadExport = errors.New("not a valid storage export")
	// ErrUnknownSubsystem: the export holds a subsystem the importer did not declare in
	// ImportOptions.Known, typically one added by newer code.
	ErrUnknownSubsystem = errors.New("the export holds a subsystem this code does not know")
	// ErrSchemaMismatch: a partly exported subsystem (ExportSpec.Only or Except) cannot be
	// merged into the target, whose part outside the export holds data at another schema
	// version.
	ErrSchemaMismatch = errors.New("the export and the database hold the subsystem at different schema versions")
)

// ExportSpec selects one subsystem for ExportSubsystems. By default the subsystem's whole
// top-level bucket is exported; Only or Except narrow that down to some of its direct
// children (nested buckets or keys). The subsystem's schema records from MetaBucket always
// go along.
type ExportSpec struct {
	Subsystem string
	// Only, when not empty, lists the direct children that are exported; all others are
	// left out.
	Only []string
	// Except lists direct children that are left out. Only and Except cannot both be set.
	Except []string
}

// partial reports whether the spec covers less than the whole bucket.
func (s ExportSpec) partial() bool { return len(s.Only) > 0 || len(s.Except) > 0 }

// covers reports whether the direct child name belongs to the exported part.
func (s ExportSpec) covers(name string) bool {
	if len(s.Only) > 0 {
		return slices.Contains(s.Only, name)
	}
	return !slices.Contains(s.Except, name)
}

func (s ExportSpec) validate() error {
	if err := validateSubsystem(s.Subsystem); err != nil {
		return err
	}
	if len(s.Only) > 0 && len(s.Except) > 0 {
		return fmt.Errorf("subsystem %s: Only and Except cannot both be set", s.Subsystem)
	}
	for _, n := range slices.Concat(s.Only, s.Except) {
		if n == "" {
			return fmt.Errorf("subsystem %s: empty child name", s.Subsystem)
		}
	}
	return nil
}

// SubsystemExport describes one subsystem of an export.
type SubsystemExport struct {
	Name string `json:"name"`
	// Version and MinReader are the subsystem's stored schema state (see Schema).
	Version   int `json:"version"`
	MinReader int `json:"min_reader"`
	// Only and Except are the spec the subsystem was exported with.
	Only   []string `json:"only,omitempty"`
	Except []string `json:"except,omitempty"`
	// Keys, Buckets and Bytes count the exported key/value pairs, nested buckets and
	// key+value bytes, schema records not included.
	Keys    int   `json:"keys"`
	Buckets int   `json:"buckets"`
	Bytes   int64 `json:"bytes"`
}

// ExportInfo describes an export stream.
type ExportInfo struct {
	Subsystems []SubsystemExport `json:"subsystems"`
	// Size is the length of the stream in bytes.
	Size int64 `json:"size"`
	// Digest is the SHA-256 the stream ends with: it covers every byte before it, and the
	// stream of the same data is the same, so equal digests mean equal content.
	Digest [sha256.Size]byte `json:"digest"`
}

// The export stream. All integers are unsigned LEB128 varints (encoding/binary's
// Uvarint); a string is its length followed by its bytes.
//
//	stream    = magic subsystem* 'Z' digest
//	magic     = "ANYAEXP" 0x01                     (the last byte is the format version)
//	subsystem = 'S' name count(only) name* count(except) name* sequence
//	            body(schema records) body(data)
//	body      = ( 'K' key value | 'B' name sequence body )* 'E'
//	digest    = SHA-256 of every byte from the magic up to and including the 'Z'
//
// Bodies list a bucket's keys and nested buckets in bbolt's byte-wise key order, which the
// reader checks (so there are no duplicates). Values of nested buckets' keys are never
// empty-vs-missing ambiguous: bbolt stores a bucket as a key with a nil value, listed as
// 'B'. The schema records are the subsystem's bucket MetaBucket/schema/<name>.
const (
	exportMagic  = "ANYAEXP\x01"
	tagSubsystem = 'S'
	tagKey       = 'K'
	tagBucket    = 'B'
	tagEnd       = 'E'
	tagTrailer   = 'Z'

	// maxExportDepth bounds the nesting of buckets a reader accepts.
	maxExportDepth = 64
	// maxKeySize is bbolt's limit on key length.
	maxKeySize = 32768
	// DefaultMaxExport is ImportOptions.MaxBytes when not set.
	DefaultMaxExport = 1 << 30
)

// ExportSubsystems writes the subsystems selected by specs, in that order, to w as one
// consistent snapshot taken in a single read transaction. A subsystem whose top-level bucket
// does not exist is left out (it is then missing from the returned ExportInfo). Writers keep
// committing while it runs.
func (db *DB) ExportSubsystems(w io.Writer, specs []ExportSpec) (ExportInfo, error) {
	var info ExportInfo
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		var err error
		info, err = ExportSubsystemsTx(tx, w, specs)
		return err
	})
	if err != nil {
		return ExportInfo{}, fmt.Errorf("export from %s: %w", db.path, err)
	}
	return info, nil
}

// ExportSubsystemsTx is ExportSubsystems within the transaction tx, so that a caller can
// export the same snapshot twice (for example once to learn its digest).
func ExportSubsystemsTx(tx *bbolt.Tx, w io.Writer, specs []ExportSpec) (ExportInfo, error) {
	seen := map[string]bool{}
	for _, s := range specs {
		if err := s.validate(); err != nil {
			return ExportInfo{}, fmt.Errorf("export: %w", err)
		}
		if seen[s.Subsystem] {
			return ExportInfo{}, fmt.Errorf("export: subsystem %s selected twice", s.Subsystem)
		}
		seen[s.Subsystem] = true
	}
	ew := &exportWriter{bw: bufio.NewWriterSize(w, 64<<10), h: sha256.New()}
	ew.write([]byte(exportMagic))
	var info ExportInfo
	for _, s := range specs {
		top := tx.Bucket([]byte(s.Subsystem))
		if top == nil {
			continue
		}
		st, err := readSchemaState(tx, s.Subsystem)
		if err != nil {
			return ExportInfo{}, fmt.Errorf("export %s: %w", s.Subsystem, err)
		}
		se := SubsystemExport{Name: s.Subsystem, Version: st.version, MinReader: st.minReader,
			Only: slices.Clone(s.Only), Except: slices.Clone(s.Except)}
		ew.tag(tagSubsystem)
		ew.str([]byte(s.Subsystem))
		for _, list := range [][]string{s.Only, s.Except} {
			ew.uvarint(uint64(len(list)))
			for _, n := range list {
				ew.str([]byte(n))
			}
		}
		ew.uvarint(top.Sequence())
		if meta := schemaBucket(tx, s.Subsystem); meta != nil {
			ew.body(meta, nil, nil)
		} else {
			ew.tag(tagEnd)
		}
		ew.body(top, s.covers, &se)
		info.Subsystems = append(info.Subsystems, se)
	}
	ew.tag(tagTrailer)
	copy(info.Digest[:], ew.h.Sum(nil))
	ew.raw(info.Digest[:])
	if err := ew.bw.Flush(); err != nil && ew.err == nil {
		ew.err = err
	}
	if ew.err != nil {
		return ExportInfo{}, fmt.Errorf("export: write: %w", ew.err)
	}
	info.Size = ew.n
	return info, nil
}

// exportWriter writes the stream, hashing everything it writes; the first write error
// sticks.
type exportWriter struct {
	bw  *bufio.Writer
	h   hash.Hash
	n   int64
	err error
	buf [binary.MaxVarintLen64]byte
}

// raw writes p without hashing it (the digest itself) or, through the other methods, with.
func (w *exportWriter) raw(p []byte) {
	if w.err != nil {
		return
	}
	_, w.err = w.bw.Write(p)
	w.n += int64(len(p))
}

func (w *exportWriter) write(p []byte) {
	w.h.Write(p)
	w.raw(p)
}

func (w *exportWriter) tag(t byte) { w.write([]byte{t}) }

func (w *exportWriter) uvarint(v uint64) {
	w.write(w.buf[:binary.PutUvarint(w.buf[:], v)])
}

func (w *exportWriter) str(p []byte) {
	w.uvarint(uint64(len(p)))
	w.write(p)
}

// body writes the content of bucket b; covers (nil: everything) selects direct children,
// and se (nil: not counted) accumulates the counts.
func (w *exportWriter) body(b *bbolt.Bucket, covers func(string) bool, se *SubsystemExport) {
	c := b.Cursor()
	for k, v := c.First(); k != nil && w.err == nil; k, v = c.Next() {
		if covers != nil && !covers(string(k)) {
			continue
		}
		if v == nil {
			if nested := b.Bucket(k); nested != nil {
				w.tag(tagBucket)
				w.str(k)
				w.uvarint(nested.Sequence())
				if se != nil {
					se.Buckets++
				}
				w.body(nested, nil, se)
				continue
			}
		}
		w.tag(tagKey)
		w.str(k)
		w.str(v)
		if se != nil {
			se.Keys++
			se.Bytes += int64(len(k) + len(v))
		}
	}
	w.tag(tagEnd)
}

// ImportOptions configures ReadExport and ImportSubsystems.
type ImportOptions struct {
	// Known maps every subsystem the importing code knows to the number of migrations it
	// has (the length of the list it gives Migrate). A subsystem of the export that is not
	// in Known is refused with ErrUnknownSubsystem; one whose stored schema needs a newer
	// reader than that (as Migrate judges it: a breaking migration past the known ones) is
	// refused with ErrSchemaTooNew. Data from an older schema is accepted and brought up to
	// date by the subsystem's next Migrate, since its schema records come along.
	Known map[string]int
	// Skip lists subsystems that are read and checked but not written.
	Skip []string
	// MaxBytes bounds the size of the stream; 0 means DefaultMaxExport.
	MaxBytes int64
	// Then, when set, runs in ImportSubsystems' transaction after the import, so that a
	// caller's own record of the import (an audit record) commits with it or not at all.
	Then func(tx *bbolt.Tx) error
}

// ReadExport reads a whole export stream from r, checks it (format, digest, nothing after
// the digest, schema versions against opts.Known) and describes it, without touching any
// database.
func ReadExport(r io.Reader, opts ImportOptions) (ExportInfo, error) {
	ex, err := parseExport(r, opts)
	if err != nil {
		return ExportInfo{}, err
	}
	return ex.info, nil
}

// ImportSubsystems replaces subsystems of db with those of the export read from r, all or
// nothing. The whole stream is read and checked first, exactly as ReadExport does; only
// then is everything written in one write transaction, so on any error the database is left
// as it was.
//
// For each subsystem of the export (but those in opts.Skip): a subsystem exported whole
// replaces the target's top-level bucket entirely; a subsystem exported with Only or Except
// replaces only the part the export covers, and the target's other children are kept (for
// example a device-bound secret the export left out). Keeping them is refused with
// ErrSchemaMismatch when they hold any key and the target's schema version of the subsystem
// differs from the export's, since the subsystem's schema records, which describe the whole
// bucket, are replaced by the export's. The subsystem's generation grows (see MarkChanged).
func (db *DB) ImportSubsystems(r io.Reader, opts ImportOptions) (ExportInfo, error) {
	ex, err := parseExport(r, opts)
	if err != nil {
		return ExportInfo{}, fmt.Errorf("import into %s: %w", db.path, err)
	}
	err = db.bolt.Update(func(tx *bbolt.Tx) error {
		for _, sub := range ex.subs {
			if slices.Contains(opts.Skip, sub.spec.Subsystem) {
				continue
			}
			if err := db.importSubsystem(tx, sub); err != nil {
				return fmt.Errorf("subsystem %s: %w", sub.spec.Subsystem, err)
			}
		}
		if opts.Then != nil {
			return opts.Then(tx)
		}
		return nil
	})
	if err != nil {
		return ExportInfo{}, fmt.Errorf("import into %s: %w", db.path, err)
	}
	return ex.info, nil
}

func (db *DB) importSubsystem(tx *bbolt.Tx, sub *parsedSubsystem) error {
	name := []byte(sub.spec.Subsystem)
	top := tx.Bucket(name)
	if !sub.spec.partial() || top == nil {
		if top != nil {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		var err error
		if top, err = tx.CreateBucket(name); err != nil {
			return err
		}
		if err := top.SetSequence(sub.seq); err != nil {
			return err
		}
	} else {
		cur, err := readSchemaState(tx, sub.spec.Subsystem)
		if err != nil {
			return err
		}
		if cur.version != sub.info.Version && keepsData(top, sub.spec) {
			return fmt.Errorf("%w: the database keeps data outside the export at schema version %d, the export is at %d",
				ErrSchemaMismatch, cur.version, sub.info.Version)
		}
		var covered [][]byte
		c := top.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if sub.spec.covers(string(k)) {
				covered = append(covered, bytes.Clone(k))
			}
		}
		for _, k := range covered {
			if top.Bucket(k) != nil {
				err = top.DeleteBucket(k)
			} else {
				err = top.Delete(k)
			}
			if err != nil {
				return fmt.Errorf("replace %q: %w", k, err)
			}
		}
	}
	if err := writeNode(top, sub.data); err != nil {
		return err
	}

	// The schema records: replaced by the export's.
	meta, err := tx.CreateBucketIfNotExists([]byte(MetaBucket))
	if err != nil {
		return err
	}
	schema, err := meta.CreateBucketIfNotExists([]byte(metaSchema))
	if err != nil {
		return err
	}
	if schema.Bucket(name) != nil {
		if err := schema.DeleteBucket(name); err != nil {
			return err
		}
	}
	if len(sub.meta.children) > 0 {
		b, err := schema.CreateBucket(name)
		if err != nil {
			return err
		}
		if err := writeNode(b, sub.meta); err != nil {
			return err
		}
	}
	db.MarkChanged(tx, sub.spec.Subsystem)
	return nil
}

// keepsData reports whether any key lies in the part of top the spec does not cover.
func keepsData(top *bbolt.Bucket, spec ExportSpec) bool {
	c := top.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if spec.covers(string(k)) {
			continue
		}
		if v != nil {
			return true
		}
		if nested := top.Bucket(k); nested == nil || hasKeys(nested) {
			return true
		}
	}
	return false
}

func hasKeys(b *bbolt.Bucket) bool {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v != nil {
			return true
		}
		if nested := b.Bucket(k); nested == nil || hasKeys(nested) {
			return true
		}
	}
	return false
}

func writeNode(b *bbolt.Bucket, n *exportNode) error {
	for _, ch := range n.children {
		if ch.bucket == nil {
			if err := b.Put(ch.name, ch.value); err != nil {
				return fmt.Errorf("put %q: %w", ch.name, err)
			}
			continue
		}
		nb, err := b.CreateBucket(ch.name)
		if err != nil {
			return fmt.Errorf("create bucket %q: %w", ch.name, err)
		}
		if err := nb.SetSequence(ch.bucket.seq); err != nil {
			return err
		}
		if err := writeNode(nb, ch.bucket); err != nil {
			return fmt.Errorf("in %q: %w", ch.name, err)
		}
	}
	return nil
}

// exportNode is a bucket read from a stream.
type exportNode struct {
	seq      uint64
	children []exportChild
}

// exportChild is a key (bucket nil) or a nested bucket.
type exportChild struct {
	name   []byte
	value  []byte
	bucket *exportNode
}

type parsedSubsystem struct {
	spec ExportSpec
	seq  uint64
	meta *exportNode
	data *exportNode
	info SubsystemExport
}

type parsedExport struct {
	subs []*parsedSubsystem
	info ExportInfo
}

// exportReader reads the stream, hashing what it consumes and counting it against a limit.
type exportReader struct {
	br  *bufio.Reader
	h   hash.Hash
	n   int64
	max int64
}

func (r *exportReader) fail(format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrBadExport, r.n, fmt.Sprintf(format, args...))
}

// eof turns an early end of the stream into ErrBadExport.
func (r *exportReader) eof(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return r.fail("the stream ends early")
	}
	return fmt.Errorf("read export: %w", err)
}

func (r *exportReader) byte() (byte, error) {
	b, err := r.br.ReadByte()
	if err != nil {
		return 0, r.eof(err)
	}
	r.n++
	if r.n > r.max {
		return 0, r.fail("the stream is longer than the limit of %d bytes", r.max)
	}
	r.h.Write([]byte{b})
	return b, nil
}

func (r *exportReader) uvarint() (uint64, error) {
	var x uint64
	var s uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		b, err := r.byte()
		if err != nil {
			return 0, err
		}
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				break
			}
			return x | uint64(b)<<s, nil
		}
		x |= uint64(b&0x7f) << s
		s += 7
	}
	return 0, r.fail("malformed number")
}

// bytes reads a length-prefixed byte string of at most limit bytes.
func (r *exportReader) bytes(limit int64, what string) ([]byte, error) {
	n, err := r.uvarint()
	if err != nil {
		return nil, err
	}
	if n > uint64(limit) || int64(n) > r.max-r.n {
		return nil, r.fail("%s of %d bytes is too long", what, n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r.br, p); err != nil {
		return nil, r.eof(err)
	}
	r.n += int64(n)
	r.h.Write(p)
	return p, nil
}

func (r *exportReader) name(what string) (string, error) {
	p, err := r.bytes(maxKeySize, what)
	if err != nil {
		return "", err
	}
	if len(p) == 0 {
		return "", r.fail("empty %s", what)
	}
	return string(p), nil
}

// node reads a body; se (nil: not counted) accumulates the counts.
func (r *exportReader) node(seq uint64, depth int, se *SubsystemExport) (*exportNode, error) {
	if depth > maxExportDepth {
		return nil, r.fail("buckets nested deeper than %d", maxExportDepth)
	}
	n := &exportNode{seq: seq}
	var last []byte
	for {
		t, err := r.byte()
		if err != nil {
			return nil, err
		}
		if t == tagEnd {
			return n, nil
		}
		if t != tagKey && t != tagBucket {
			return nil, r.fail("unexpected record type 0x%02x in a bucket", t)
		}
		k, err := r.bytes(maxKeySize, "key")
		if err != nil {
			return nil, err
		}
		if len(k) == 0 {
			return nil, r.fail("empty key")
		}
		if last != nil && bytes.Compare(k, last) <= 0 {
			return nil, r.fail("keys out of order or repeated")
		}
		last = k
		if t == tagKey {
			v, err := r.bytes(r.max, "value")
			if err != nil {
				return nil, err
			}
			n.children = append(n.children, exportChild{name: k, value: v})
			if se != nil {
				se.Keys++
				se.Bytes += int64(len(k) + len(v))
			}
			continue
		}
		nseq, err := r.uvarint()
		if err != nil {
			return nil, err
		}
		if se != nil {
			se.Buckets++
		}
		nb, err := r.node(nseq, depth+1, se)
		if err != nil {
			return nil, err
		}
		n.children = append(n.children, exportChild{name: k, bucket: nb})
	}
}

func parseExport(r io.Reader, opts ImportOptions) (*parsedExport, error) {
	er := &exportReader{br: bufio.NewReaderSize(r, 64<<10), h: sha256.New(), max: opts.MaxBytes}
	if er.max <= 0 {
		er.max = DefaultMaxExport
	}
	magic := make([]byte, len(exportMagic))
	for i := range magic {
		b, err := er.byte()
		if err != nil {
			return nil, err
		}
		magic[i] = b
	}
	if string(magic[:len(magic)-1]) != exportMagic[:len(exportMagic)-1] {
		return nil, er.fail("no export magic")
	}
	if magic[len(magic)-1] != exportMagic[len(exportMagic)-1] {
		return nil, er.fail("export format version %d, this code reads version %d", magic[len(magic)-1], exportMagic[len(exportMagic)-1])
	}
	ex := &parsedExport{}
	seen := map[string]bool{}
	for {
		t, err := er.byte()
		if err != nil {
			return nil, err
		}
		if t == tagTrailer {
			break
		}
		if t != tagSubsystem {
			return nil, er.fail("unexpected record type 0x%02x between subsystems", t)
		}
		sub, err := er.subsystem()
		if err != nil {
			return nil, err
		}
		if seen[sub.spec.Subsystem] {
			return nil, er.fail("subsystem %s appears twice", sub.spec.Subsystem)
		}
		seen[sub.spec.Subsystem] = true
		ex.subs = append(ex.subs, sub)
	}
	copy(ex.info.Digest[:], er.h.Sum(nil))
	var digest [sha256.Size]byte
	if _, err := io.ReadFull(er.br, digest[:]); err != nil {
		return nil, er.eof(err)
	}
	er.n += sha256.Size
	if digest != ex.info.Digest {
		return nil, fmt.Errorf("%w: its SHA-256 does not match: the stream is damaged", ErrBadExport)
	}
	if _, err := er.br.ReadByte(); err == nil {
		return nil, er.fail("data after the end of the export")
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read export: %w", err)
	}
	ex.info.Size = er.n

	// Every record is in; now judge the schemas.
	for _, sub := range ex.subs {
		name := sub.spec.Subsystem
		known, ok := opts.Known[name]
		if !ok {
			return nil, fmt.Errorf("subsystem %s (schema version %d): %w", name, sub.info.Version, ErrUnknownSubsystem)
		}
		st := schemaState{version: sub.info.Version, minReader: sub.info.MinReader}
		if st.version > known && st.minReader > known {
			return nil, fmt.Errorf("subsystem %s: the export's schema version %d needs code that knows at least version %d, this code knows %d: %w",
				name, st.version, st.minReader, known, ErrSchemaTooNew)
		}
		ex.info.Subsystems = append(ex.info.Subsystems, sub.info)
	}
	return ex, nil
}

func (r *exportReader) subsystem() (*parsedSubsystem, error) {
	name, err := r.name("subsystem name")
	if err != nil {
		return nil, err
	}
	spec := ExportSpec{Subsystem: name}
	for _, list := range []*[]string{&spec.Only, &spec.Except} {
		n, err := r.uvarint()
		if err != nil {
			return nil, err
		}
		if n > 1024 {
			return nil, r.fail("subsystem %s: %d child names", name, n)
		}
		for range n {
			c, err := r.name("child name")
			if err != nil {
				return nil, err
			}
			*list = append(*list, c)
		}
	}
	if err := spec.validate(); err != nil {
		return nil, r.fail("%v", err)
	}
	seq, err := r.uvarint()
	if err != nil {
		return nil, err
	}
	sub := &parsedSubsystem{spec: spec, seq: seq,
		info: SubsystemExport{Name: name, Only: spec.Only, Except: spec.Except}}
	if sub.meta, err = r.node(0, 1, nil); err != nil {
		return nil, err
	}
	if sub.info.Version, sub.info.MinReader, err = metaVersions(sub.meta); err != nil {
		return nil, r.fail("subsystem %s: schema records: %v", name, err)
	}
	if sub.data, err = r.node(seq, 0, &sub.info); err != nil {
		return nil, err
	}
	for _, ch := range sub.data.children {
		if !spec.covers(string(ch.name)) {
			return nil, r.fail("subsystem %s holds %q, which its spec leaves out", name, ch.name)
		}
	}
	return sub, nil
}

// metaVersions reads version and min_reader from a subsystem's schema records.
func metaVersions(n *exportNode) (version, minReader int, err error) {
	for _, ch := range n.children {
		if ch.bucket != nil {
			continue
		}
		var p *int
		switch string(ch.name) {
		case keyVersion:
			p = &version
		case keyMinReader:
			p = &minReader
		default:
			continue
		}
		v, err := strconv.Atoi(string(ch.value))
		if err != nil || v < 0 {
			return 0, 0, fmt.Errorf("corrupt meta value %s=%q", ch.name, ch.value)
		}
		*p = v
	}
	return version, minReader, nil
}
