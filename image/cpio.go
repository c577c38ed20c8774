package image

import (
	"bytes"
	"fmt"
	"io"
)

// cpio mode bits (from <sys/stat.h>).
const (
	modeDir  = 0o040000
	modeReg  = 0o100000
	modeChar = 0o020000
	modeLink = 0o120000
)

// cpioEntry is one member of a newc archive.
type cpioEntry struct {
	Name  string
	Mode  uint32 // type and permission bits
	Data  []byte // file content, or symlink target
	Major uint32 // device numbers for device nodes
	Minor uint32
}

// writeCpio writes entries in order as a newc ("070701") archive with all times zero, followed
// by the trailer. Inode numbers are assigned in order, so the output depends only on entries.
func writeCpio(w io.Writer, entries []cpioEntry) error {
	var buf bytes.Buffer
	write := func(e cpioEntry, ino int) {
		nlink := 1
		if e.Mode&0o170000 == modeDir {
			nlink = 2
		}
		fmt.Fprintf(&buf, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
			ino, e.Mode, 0, 0, nlink, 0, len(e.Data), 0, 0, e.Major, e.Minor, len(e.Name)+1, 0)
		buf.WriteString(e.Name)
		buf.WriteByte(0)
		pad(&buf)
		buf.Write(e.Data)
		pad(&buf)
	}
	for i, e := range entries {
		write(e, i+1)
		if _, err := w.Write(buf.Bytes()); err != nil {
			return fmt.Errorf("write cpio entry %s: %w", e.Name, err)
		}
		buf.Reset()
	}
	write(cpioEntry{Name: "TRAILER!!!"}, 0)
	_, err := w.Write(buf.Bytes())
	return err
}

func pad(b *bytes.Buffer) {
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
}
