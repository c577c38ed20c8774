package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/anya-edge/anya/appliance/update/release"
	"github.com/anya-edge/anya/appliance/update/slot"
	"golang.org/x/sys/unix"
)

// copyBuffer is the size of the writes into the system partition: large writes through the
// page cache, then one fsync.
const copyBuffer = 4 << 20

// InstallOptions configure one install.
type InstallOptions struct {
	// Source says where the release came from ("fleet", "upload", "usb"); it is recorded.
	Source string
	// SinglePass streams each payload once, straight into the inactive slot, hashing as it
	// goes. By default every payload is first read and checked without writing anything, then
	// read again and written: a tampered payload then leaves every slot untouched, at the
	// cost of reading the source twice. A source that cannot be read twice (a tar stream that
	// is not seekable) needs SinglePass; a tampered payload then stops the install part-way,
	// in a slot no boot entry refers to.
	SinglePass bool
	// Force installs the running release again, or a release that failed on this box before.
	Force bool
}

// Verify checks the release src offers against the trust state (release.Verifier.Update) and
// returns it; no payload is read but the manifest.
func (a *Agent) Verify(ctx context.Context, src release.Fetcher) (*release.Release, error) {
	if a.disabled != "" {
		return nil, fmt.Errorf("%w: %s", ErrDisabled, a.disabled)
	}
	if err := a.lock(); err != nil {
		return nil, err
	}
	defer a.op.Unlock()
	r := a.cfg.Running
	rel, err := a.verifier.Update(ctx, src, release.Installed{Version: r.Version, Counter: r.Counter, Built: r.Built})
	if err != nil {
		return nil, fmt.Errorf("verify release: %w", err)
	}
	return rel, nil
}

// Update verifies the release src offers and installs it (Verify, then Install). A refusal is
// recorded in the history (once while the same refusal repeats); an unreachable source is
// not.
func (a *Agent) Update(ctx context.Context, src release.Fetcher, o InstallOptions) (*Attempt, error) {
	rel, err := a.Verify(ctx, src)
	if err != nil {
		reason := release.ReasonOf(err)
		if reason != 0 && reason != release.ReasonUnavailable && ctx.Err() == nil {
			if rerr := a.recordRefusal(o.Source, err); rerr != nil {
				a.log.Error("record refusal", "err", rerr)
			}
		}
		return nil, err
	}
	return a.Install(ctx, rel, o)
}

func (a *Agent) recordRefusal(source string, err error) error {
	reason := release.ReasonOf(err)
	now := a.now()
	last, lerr := a.rec.list(1)
	if lerr != nil {
		return lerr
	}
	if len(last) > 0 && last[0].Result == Refused && last[0].Code == reason.String() && last[0].Source == source &&
		last[0].Detail == err.Error() {
		last[0].Finished = now
		return a.rec.put(last[0])
	}
	r := a.cfg.Running
	at := Attempt{Source: source, FromVersion: r.Version, FromCounter: r.Counter, FromSlot: a.cfg.Slot,
		Started: now, Finished: now, Result: Refused, Code: reason.String(), Reason: reason.Text(), Detail: err.Error()}
	a.log.Warn("release refused", "source", source, "reason", reason, "err", err)
	return a.rec.add(&at)
}

// installable says why no install can start now.
func (a *Agent) installable() error {
	if a.cfg.Slot == "" {
		return ErrUnmanaged
	}
	if a.disabled != "" {
		return fmt.Errorf("%w: %s", ErrDisabled, a.disabled)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.booted {
		return errors.New("update agent: Install before Boot")
	}
	if a.boot.Trial() {
		return ErrOnTrial
	}
	return nil
}

// Install writes a verified release into the inactive slot and sets that slot to be tried at
// the next boot; the caller then reboots. The steps, each only after the one before
// succeeded:
//
//  1. (unless SinglePass) read every payload and check its length and SHA-256, writing
//     nothing;
//  2. remove the inactive slot's boot entry and boot files: from here on no entry refers to
//     the slot, so whatever happens to it cannot be booted;
//  3. stream the system squashfs into the slot's partition (large writes, fsync, then read
//     back from the device and hashed again), and the kernel, initramfs and release.json
//     into the ESP's /anya/<slot>/ (each through a temporary name and a rename), every
//     payload checked as it streams (release.PayloadReader ends in io.EOF only when it
//     matched);
//  4. Config.BeforeSwitch (the TPM approves the new boot state);
//  5. write the new entry anya-<slot>+3.conf (temporary name, then rename), with a version
//     above the running slot's, so systemd-boot tries it first.
//
// Killed or failing before step 5, the box still boots the running slot, which is untouched
// and keeps its entry; the install can be retried. The data partition is never written.
func (a *Agent) Install(ctx context.Context, rel *release.Release, o InstallOptions) (att *Attempt, err error) {
	if err := a.installable(); err != nil {
		return nil, err
	}
	if err := a.lock(); err != nil {
		return nil, err
	}
	defer a.op.Unlock()
	run := a.cfg.Running
	if !o.Force {
		if rel.Counter == run.Counter {
			return nil, fmt.Errorf("%w: %s is running", ErrUpToDate, rel)
		}
		failed, err := a.failedBefore(rel)
		if err != nil {
			return nil, err
		}
		if failed != nil {
			return nil, fmt.Errorf("%w: %s", ErrFailedBefore, failed.Message())
		}
	}
	target := slot.Other(a.cfg.Slot)
	part, _ := a.cfg.Layout.Slot(target)
	if err := a.supersede(target); err != nil {
		return nil, err
	}
	att = &Attempt{Version: rel.Version, Counter: rel.Counter, Source: o.Source,
		FromVersion: run.Version, FromCounter: run.Counter, FromSlot: a.cfg.Slot, Slot: target,
		Started: a.now(), Result: Installing}
	if err := a.rec.add(att); err != nil {
		return nil, err
	}
	log := a.log.With("version", rel.Version, "counter", rel.Counter, "slot", target, "source", o.Source)
	log.Info("installing update")
	wrote := false
	defer func() {
		if err == nil {
			return
		}
		a.fail(att, wrote, err)
		log.Error("update install failed", "result", att.Result, "err", err)
	}()

	if !o.SinglePass {
		if err := verifyPayloads(ctx, rel); err != nil {
			return att, err
		}
	}
	esp, err := a.cfg.OpenESP(true)
	if err != nil {
		return att, &stepError{"esp", err}
	}
	defer func() {
		if esp != nil {
			esp.Close()
		}
	}()
	ents, err := readEntries(esp)
	if err != nil {
		return att, &stepError{"esp", err}
	}
	running := ents.pick(a.cfg.Slot, a.cfg.LoaderEntry)
	// Open the first payload that comes from the source before anything is written: a
	// source that cannot be read a second time fails here, with the slot untouched.
	opened := map[release.Kind]*release.PayloadReader{}
	defer func() {
		for _, r := range opened {
			r.Close()
		}
	}()
	for _, p := range rel.Payloads {
		if p.Kind != release.KindRelease {
			r, err := rel.Open(ctx, p.Kind)
			if err != nil && !o.SinglePass && errors.Is(err, fs.ErrNotExist) {
				err = fmt.Errorf("the source cannot be read a second time (a tar stream needs InstallOptions.SinglePass): %w", err)
			}
			if err != nil {
				return att, err
			}
			opened[p.Kind] = r
			break
		}
	}
	wrote = true
	if err := disableSlot(esp, ents, target); err != nil {
		return att, &stepError{"esp", err}
	}
	a.mu.Lock()
	a.boot.Pending, a.boot.OtherEntry, a.boot.OtherState, a.boot.OtherVersion, a.boot.Fallback = false, "", slot.Good, "", nil
	a.mu.Unlock()
	for _, p := range rel.Payloads {
		r := opened[p.Kind]
		if r == nil {
			if r, err = rel.Open(ctx, p.Kind); err != nil {
				return att, err
			}
			opened[p.Kind] = r
		}
		if err := writePayload(esp, r, target, part); err != nil {
			return att, err
		}
		r.Close()
		delete(opened, p.Kind)
	}

	options := slot.KernelCmdline(target, "")
	order := int(rel.Counter)
	if running != nil {
		if running.Entry.Options != "" {
			options = slot.WithSlot(running.Entry.Options, target)
		}
		order = max(order, running.Entry.Order()+1)
	}
	name := slot.Trial(target, a.cfg.Tries).String()
	if a.cfg.BeforeSwitch != nil {
		kp, _ := rel.Payload(release.KindKernel)
		ip, _ := rel.Payload(release.KindInitrd)
		sw := Switch{Slot: target, Entry: name, Version: rel.Version, Counter: rel.Counter,
			KernelSHA256: kp.SHA256, InitrdSHA256: ip.SHA256, Options: options}
		if err := a.cfg.BeforeSwitch(ctx, sw); err != nil {
			return att, &stepError{"switch", err}
		}
	}
	if err := ctx.Err(); err != nil {
		return att, err
	}
	entry := slot.NewEntry(target, rel.Version, order, options)
	if _, err := esp.WriteFile(path.Join(slot.EntriesDir, name), bytes.NewReader(entry.Bytes())); err != nil {
		return att, &stepError{"esp", err}
	}
	cerr := esp.Close()
	esp = nil
	if cerr != nil {
		// The entry may or may not have reached the disk; the next boot tells (Boot
		// reconciles the record with the entries).
		log.Error("closing the ESP after the switch", "err", cerr)
	}
	att.Result, att.Switched = Installed, a.now()
	if err := a.rec.put(*att); err != nil {
		// Switched all the same: the next boot reconciles the record with the entries.
		log.Error("recording the switch", "err", err)
	}
	a.mu.Lock()
	a.boot.Pending, a.boot.OtherEntry, a.boot.OtherState, a.boot.OtherVersion = true, name, slot.Trying, rel.Version
	a.mu.Unlock()
	log.Info("update installed; the new slot is tried at the next restart", "entry", name)
	return att, nil
}

// stepError is a failure of the install that is not about the release: the ESP, the disk, the
// switch hook.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// fail records how an install ended.
func (a *Agent) fail(att *Attempt, wrote bool, err error) {
	att.Finished, att.Detail = a.now(), err.Error()
	var se *stepError
	switch reason := release.ReasonOf(err); {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		att.Result, att.Code = Failed, "canceled"
		att.Reason = "the install was stopped before it finished; nothing was switched"
	case reason == release.ReasonUnavailable:
		att.Result, att.Code = Failed, reason.String()
		att.Reason = reason.Text() + " Nothing was switched."
	case reason != 0 && !wrote:
		att.Result, att.Code, att.Reason = Refused, reason.String(), reason.Text()+" Nothing was written."
	case reason != 0:
		att.Result, att.Code, att.Reason = Failed, reason.String(), reason.Text()+" Nothing was switched."
	case errors.As(err, &se) && se.step == "switch":
		att.Result, att.Code = Failed, "switch"
		att.Reason = "preparing the new version's boot state failed; nothing was switched"
	case errors.As(err, &se):
		att.Result, att.Code = Failed, se.step
		att.Reason = "writing the new version failed; nothing was switched"
	default:
		att.Result, att.Code = Failed, "write"
		att.Reason = "writing the new version failed; nothing was switched"
	}
	if rerr := a.rec.put(*att); rerr != nil {
		a.log.Error("record failed install", "err", rerr)
	}
}

// supersede finishes the unfinished attempts that wrote slot s: an install now replaces
// them (an update installed but not yet started, or one whose process died).
func (a *Agent) supersede(s string) error {
	atts, err := a.rec.list(0)
	if err != nil {
		return err
	}
	for _, at := range atts {
		if at.Slot != s || at.Result.Final() {
			continue
		}
		at.Result, at.Finished, at.Code = Failed, a.now(), "superseded"
		at.Reason = "a later install replaced it before it was started"
		if err := a.rec.put(at); err != nil {
			return err
		}
	}
	return nil
}

// failedBefore returns the attempt in which rel rolled back on this box, if any.
func (a *Agent) failedBefore(rel *release.Release) (*Attempt, error) {
	atts, err := a.rec.list(0)
	if err != nil {
		return nil, err
	}
	for _, at := range atts {
		if at.Counter == rel.Counter && at.Result == RolledBack {
			return &at, nil
		}
	}
	return nil, nil
}

// verifyPayloads reads every payload but the manifest (checked by Verify) and checks it,
// writing nothing.
func verifyPayloads(ctx context.Context, rel *release.Release) error {
	buf := make([]byte, copyBuffer)
	for _, p := range rel.Payloads {
		if p.Kind == release.KindRelease {
			continue
		}
		r, err := rel.Open(ctx, p.Kind)
		if err != nil {
			return err
		}
		_, err = io.CopyBuffer(writerOnly{io.Discard}, r, buf)
		r.Close()
		if err != nil {
			return err
		}
		if !r.Verified() {
			return fmt.Errorf("payload %s: not verified", p.Path)
		}
	}
	return nil
}

// writerOnly hides io.Discard's ReadFrom, so that io.CopyBuffer uses the large buffer.
type writerOnly struct{ io.Writer }

// disableSlot removes the target slot's boot entries, leftover temporary entries, and its
// boot files, and syncs: afterwards nothing the boot loader reads refers to the slot.
func disableSlot(esp slot.ESP, ents espEntries, target string) error {
	for _, e := range ents.bySlot[target] {
		if err := esp.Remove(path.Join(slot.EntriesDir, e.File)); err != nil {
			return err
		}
	}
	for _, f := range ents.tmp {
		if err := esp.Remove(path.Join(slot.EntriesDir, f)); err != nil {
			return err
		}
	}
	// The entry removal must be on disk before the slot's files change.
	if err := esp.Sync(); err != nil {
		return err
	}
	dir := slot.BootDir(target)
	names, err := esp.List(dir)
	if err != nil {
		return nil // no boot directory yet
	}
	for _, n := range names {
		switch strings.TrimSuffix(n, ".tmp") {
		case slot.KernelFile, slot.InitrdFile, slot.ReleaseFile:
			if err := esp.Remove(path.Join(dir, n)); err != nil {
				return err
			}
		}
	}
	return esp.Sync()
}

// writePayload streams one payload into the target slot: the system image into its
// partition, the others into its boot directory on the ESP.
func writePayload(esp slot.ESP, r *release.PayloadReader, target string, part slot.Partition) error {
	p := r.Payload()
	if p.Kind == release.KindSystem {
		if err := writePartition(part, r, p.Length); err != nil {
			return err
		}
		if !r.Verified() {
			return fmt.Errorf("payload %s: not verified", p.Path)
		}
		if err := readBack(part, p); err != nil {
			return &stepError{"write", err}
		}
		return nil
	}
	name := p.Kind.FileName()
	if name == "" {
		return fmt.Errorf("payload %s: unknown kind %s", p.Path, p.Kind)
	}
	if _, err := esp.WriteFile(path.Join(slot.BootDir(target), name), r); err != nil {
		if release.ReasonOf(err) != 0 || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return &stepError{"esp", err}
	}
	if !r.Verified() {
		return fmt.Errorf("payload %s: not verified", p.Path)
	}
	return nil
}

// writePartition writes length bytes from r at the start of the partition and fsyncs.
// Errors from r (a payload that does not verify, a cancelled context) are returned as they
// are; others are stepErrors.
func writePartition(part slot.Partition, r io.Reader, length int64) error {
	f, err := os.OpenFile(part.Path, os.O_WRONLY, 0)
	if err != nil {
		return &stepError{"write", fmt.Errorf("open slot partition: %w", err)}
	}
	defer f.Close()
	size := part.Size
	if size <= 0 {
		end, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			return &stepError{"write", fmt.Errorf("slot partition size: %w", err)}
		}
		size = end - part.Offset
	}
	if length > size {
		return &stepError{"write", fmt.Errorf("the system image (%d bytes) does not fit the %d-byte slot partition %s", length, size, part)}
	}
	w := &errWriter{w: io.NewOffsetWriter(f, part.Offset)}
	if _, err := io.CopyBuffer(w, r, make([]byte, copyBuffer)); err != nil {
		if w.err != nil {
			return &stepError{"write", fmt.Errorf("write slot partition %s: %w", part, w.err)}
		}
		return err
	}
	if err := f.Sync(); err != nil {
		return &stepError{"write", fmt.Errorf("sync slot partition %s: %w", part, err)}
	}
	return nil
}

// errWriter remembers a write error, to tell it from a read error after io.Copy.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

// readBack reads the payload back from the partition, past the page cache where the kernel
// allows, and compares its SHA-256 with the signed one: flash that silently drops writes is
// caught before the slot is made bootable.
func readBack(part slot.Partition, p release.Payload) error {
	f, err := os.Open(part.Path)
	if err != nil {
		return fmt.Errorf("read back slot partition: %w", err)
	}
	defer f.Close()
	_ = unix.Fadvise(int(f.Fd()), part.Offset, p.Length, unix.FADV_DONTNEED)
	h := sha256.New()
	if _, err := io.CopyBuffer(h, io.NewSectionReader(f, part.Offset, p.Length), make([]byte, copyBuffer)); err != nil {
		return fmt.Errorf("read back slot partition %s: %w", part, err)
	}
	if subtle.ConstantTimeCompare(h.Sum(nil), p.SHA256[:]) != 1 {
		return fmt.Errorf("slot partition %s does not hold what was written (read back differs)", part)
	}
	return nil
}
