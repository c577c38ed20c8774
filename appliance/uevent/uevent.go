// Package uevent reads the kernel's device events (the netlink uevents udev would normally
// consume) so PID 1 can react to hardware arriving and leaving without running udevd: for
// example restart pcscd when a USB smart-card reader (a YubiKey) is plugged in, which pcscd
// only notices through udev otherwise.
package uevent

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Event is one kernel uevent.
type Event struct {
	Action  string            // add, remove, change, bind, unbind, …
	DevPath string            // /devices/…
	Env     map[string]string // SUBSYSTEM, DEVTYPE, INTERFACE, …
}

// Parse decodes one netlink message from the kernel: "ACTION@DEVPATH\0KEY=VALUE\0…".
func Parse(msg []byte) (Event, error) {
	parts := bytes.Split(msg, []byte{0})
	head := string(parts[0])
	action, devpath, ok := strings.Cut(head, "@")
	if !ok || action == "" || !strings.HasPrefix(devpath, "/") {
		return Event{}, fmt.Errorf("uevent: bad header %q", head)
	}
	e := Event{Action: action, DevPath: devpath, Env: map[string]string{}}
	for _, p := range parts[1:] {
		if k, v, ok := strings.Cut(string(p), "="); ok && k != "" {
			e.Env[k] = v
		}
	}
	if a := e.Env["ACTION"]; a != "" && a != action {
		return Event{}, fmt.Errorf("uevent: header action %q differs from ACTION=%q", action, a)
	}
	return e, nil
}

// SmartCardReader reports whether the event is a USB interface of class 0x0B (smart card,
// CCID) being added or removed: what a YubiKey or a card reader looks like.
func (e Event) SmartCardReader() bool {
	if e.Action != "add" && e.Action != "remove" {
		return false
	}
	return e.Env["SUBSYSTEM"] == "usb" && e.Env["DEVTYPE"] == "usb_interface" &&
		strings.HasPrefix(e.Env["INTERFACE"], "11/")
}

// Listen calls fn for every kernel uevent until ctx is done.
func Listen(ctx context.Context, fn func(Event)) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return fmt.Errorf("uevent socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("uevent bind: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { unix.Close(fd) })
	defer stop()
	buf := make([]byte, 64<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if err == unix.EINTR || err == unix.ENOBUFS {
				continue
			}
			return fmt.Errorf("uevent receive: %w", err)
		}
		if e, err := Parse(buf[:n]); err == nil {
			fn(e)
		}
	}
}
