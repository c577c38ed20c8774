package qemu

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// OVMF is the firmware Debian's ovmf package installs.
const OVMF = "/usr/share/ovmf/OVMF.fd"

// Config describes one VM.
type Config struct {
	Image    string    // raw disk image; the VM writes to it
	HostPort int       // host port on 127.0.0.1 forwarded to the box's port 80
	MemoryMB int       // default 512
	CPUs     int       // default 2
	Console  io.Writer // also receives the serial console; may be nil
	TPM      string    // unix socket of a running swtpm (see StartSwtpm); "" for no TPM
	Monitor  string    // unix socket for QEMU's human monitor (see VM.Monitor); "" for none
	Extra    []string  // more QEMU arguments
	// DiskFirst makes the firmware try Image before the devices Extra gives a bootindex
	// (a USB stick left plugged in); otherwise those come first.
	DiskFirst bool
}

// VM is a running QEMU.
type VM struct {
	cmd     *exec.Cmd
	started time.Time

	mu    sync.Mutex
	lines []Line
	cond  *sync.Cond
	done  bool
	err   error
}

// Line is one line of the serial console and when it arrived.
type Line struct {
	Text string
	At   time.Duration // since QEMU was started
}

// Start boots the image.
func Start(cfg Config) (*VM, error) {
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = 512
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 2
	}
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return nil, fmt.Errorf("start VM: %w (install qemu-system-x86)", err)
	}
	if _, err := os.Stat(OVMF); err != nil {
		return nil, fmt.Errorf("start VM: firmware: %w (install ovmf)", err)
	}
	args := []string{
		"-machine", "q35", "-m", strconv.Itoa(cfg.MemoryMB), "-smp", strconv.Itoa(cfg.CPUs),
		"-bios", OVMF,
		"-drive", "file=" + cfg.Image + ",format=raw,if=none,id=disk0",
		"-device", "virtio-blk-pci,drive=disk0" + map[bool]string{true: ",bootindex=0"}[cfg.DiskFirst],
		"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:80", cfg.HostPort),
		"-device", "virtio-net-pci,netdev=n0",
		// A hardware RNG, as every real board has one (or RDRAND): without it the guest's
		// getrandom(2) blocks for a second or more early in boot under TCG.
		"-device", "virtio-rng-pci",
		"-device", "i6300esb",
		"-display", "none", "-serial", "stdio", "-nodefaults",
	}
	if cfg.Monitor != "" {
		args = append(args, "-monitor", "unix:"+cfg.Monitor+",server,nowait")
	} else {
		args = append(args, "-monitor", "none")
	}
	if cfg.TPM != "" {
		args = append(args, "-chardev", "socket,id=chrtpm,path="+cfg.TPM,
			"-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0")
	}
	args = append(args, cfg.Extra...)
	vm := &VM{cmd: exec.Command(bin, args...)}
	vm.cond = sync.NewCond(&vm.mu)
	out, err := vm.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	vm.cmd.Stderr = vm.cmd.Stdout
	vm.started = time.Now()
	if err := vm.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start VM: %w", err)
	}
	go vm.read(out, cfg.Console)
	return vm, nil
}

func (vm *VM) read(r io.Reader, console io.Writer) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		text := s.Text()
		if console != nil {
			fmt.Fprintln(console, text)
		}
		vm.mu.Lock()
		vm.lines = append(vm.lines, Line{Text: text, At: time.Since(vm.started)})
		vm.cond.Broadcast()
		vm.mu.Unlock()
	}
	err := vm.cmd.Wait()
	vm.mu.Lock()
	vm.done, vm.err = true, err
	vm.cond.Broadcast()
	vm.mu.Unlock()
}

// Lines returns the console lines seen so far.
func (vm *VM) Lines() []Line {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return append([]Line(nil), vm.lines...)
}

// ErrExited means QEMU ended before the line appeared.
var ErrExited = errors.New("VM exited")

// WaitFor waits for a console line matching re, looking only at lines from index from on,
// and returns the line, its index and the submatches.
func (vm *VM) WaitFor(ctx context.Context, re *regexp.Regexp, from int) (Line, int, []string, error) {
	stop := context.AfterFunc(ctx, func() {
		vm.mu.Lock()
		vm.cond.Broadcast()
		vm.mu.Unlock()
	})
	defer stop()
	vm.mu.Lock()
	defer vm.mu.Unlock()
	for i := from; ; {
		for ; i < len(vm.lines); i++ {
			if m := re.FindStringSubmatch(vm.lines[i].Text); m != nil {
				return vm.lines[i], i, m, nil
			}
		}
		if vm.done {
			return Line{}, i, nil, fmt.Errorf("waiting for %q: %w (%v)", re, ErrExited, vm.err)
		}
		if ctx.Err() != nil {
			return Line{}, i, nil, fmt.Errorf("waiting for %q: %w", re, ctx.Err())
		}
		vm.cond.Wait()
	}
}

// Stop kills QEMU and waits for it.
func (vm *VM) Stop() {
	vm.cmd.Process.Kill()
	vm.mu.Lock()
	for !vm.done {
		vm.cond.Wait()
	}
	vm.mu.Unlock()
}

// Monitor sends one command to QEMU's human monitor at socket (Config.Monitor), as a person
// would type it (for example "device_add usb-ccid,bus=xhci.0,id=reader"), and returns what
// QEMU answered.
func Monitor(socket, command string) (string, error) {
	c, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return "", fmt.Errorf("QEMU monitor: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	readPrompt := func() (string, error) {
		var out strings.Builder
		for {
			b, err := r.ReadByte()
			if err != nil {
				return out.String(), err
			}
			out.WriteByte(b)
			if strings.HasSuffix(out.String(), "(qemu) ") {
				return out.String(), nil
			}
		}
	}
	if _, err := readPrompt(); err != nil {
		return "", fmt.Errorf("QEMU monitor: %w", err)
	}
	if _, err := fmt.Fprintf(c, "%s\n", command); err != nil {
		return "", fmt.Errorf("QEMU monitor: %w", err)
	}
	out, err := readPrompt()
	if err != nil {
		return out, fmt.Errorf("QEMU monitor: %w", err)
	}
	return out, nil
}

// Pid returns QEMU's process id.
func (vm *VM) Pid() int { return vm.cmd.Process.Pid }

// ReadyLine matches anyad's ready line.
var ReadyLine = regexp.MustCompile(`ANYA-READY boot_ms=(\d+)(?: init_ms=(\d+))?`)
