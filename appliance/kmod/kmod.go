package kmod

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Loader loads modules from one or more flat module directories. It is safe for concurrent
// use: modules load in parallel (a driver's probe may wait for hardware), and a dependency two
// modules share is loaded once while both wait for it.
type Loader struct {
	mu      sync.Mutex
	dirs    map[string]string   // module name -> directory holding <name>.ko
	deps    map[string][]string // module name -> dependencies, load order
	aliases []alias
	loads   map[string]*loadOnce
	// load inserts one module file; finit_module by default, replaced in tests.
	load func(path string) error
	// Loaded, when set, is told how long each module took to load.
	Loaded func(name string, took time.Duration)
}

type alias struct{ pattern, module string }

// loadOnce is the single attempt to load one module.
type loadOnce struct {
	once sync.Once
	err  error
}

// New reads modules.dep and modules.alias from each directory. Missing directories are skipped.
func New(dirs ...string) (*Loader, error) {
	l := &Loader{dirs: map[string]string{}, deps: map[string][]string{}, loads: map[string]*loadOnce{}, load: finit}
	for _, d := range dirs {
		if err := l.AddDir(d); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// AddDir adds a module directory (for example the system slot's, once it is mounted).
func (l *Loader) AddDir(dir string) error {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read modules.dep: %w", err)
	}
	defer f.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := bufio.NewScanner(f)
	for s.Scan() {
		mod, rest, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}
		name := strings.TrimSuffix(path.Base(mod), ".ko")
		var deps []string
		fields := strings.Fields(rest)
		// kmod lists the dependency to load first last.
		for i := len(fields) - 1; i >= 0; i-- {
			deps = append(deps, strings.TrimSuffix(path.Base(fields[i]), ".ko"))
		}
		l.dirs[name] = dir
		l.deps[name] = deps
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("read modules.dep: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "modules.alias"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read modules.alias: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "alias" {
			l.aliases = append(l.aliases, alias{f[1], f[2]})
		}
	}
	return nil
}

// Known reports whether the loader has a module of that name.
func (l *Loader) Known(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.dirs[name]
	return ok
}

// Load loads the named module after its dependencies. A module the kernel already has is not
// an error. Each module is tried once; later calls return the first result.
func (l *Loader) Load(name string) error {
	name = strings.ReplaceAll(name, "-", "_")
	l.mu.Lock()
	dir, ok := l.dirs[name]
	deps := l.deps[name]
	o := l.loads[name]
	if o == nil {
		o = &loadOnce{}
		l.loads[name] = o
	}
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("load module %s: not in any module directory", name)
	}
	o.once.Do(func() {
		for _, d := range deps {
			if err := l.Load(d); err != nil {
				o.err = fmt.Errorf("load module %s: %w", name, err)
				return
			}
		}
		t := time.Now()
		if err := l.load(filepath.Join(dir, name+".ko")); err != nil && !errors.Is(err, unix.EEXIST) {
			o.err = fmt.Errorf("load module %s: %w", name, err)
			return
		}
		if l.Loaded != nil {
			l.Loaded(name, time.Since(t))
		}
	})
	return o.err
}

// attempted reports whether Load was called for the module.
func (l *Loader) attempted(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.loads[name] != nil
}

// Match returns the modules whose aliases match a device modalias.
func (l *Loader) Match(modalias string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, a := range l.aliases {
		if ok, _ := path.Match(a.pattern, modalias); ok {
			out = append(out, a.module)
		}
	}
	return out
}

// Coldplug loads the drivers for every device under sysfs (normally "/sys"), in parallel, and
// repeats while loading revealed new devices. It returns the modules it loaded and the errors
// it met; a module that fails does not stop the others and is not retried.
func (l *Loader) Coldplug(sysfs string) (loaded []string, errs []error) {
	var mu sync.Mutex
	for round := 0; round < 5; round++ {
		var todo []string
		seen := map[string]bool{}
		for _, ma := range modaliases(sysfs) {
			for _, m := range l.Match(ma) {
				if !seen[m] && !l.attempted(m) {
					seen[m] = true
					todo = append(todo, m)
				}
			}
		}
		if len(todo) == 0 {
			break
		}
		var wg sync.WaitGroup
		for _, m := range todo {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := l.Load(m)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				} else {
					loaded = append(loaded, m)
				}
			}()
		}
		wg.Wait()
	}
	sort.Strings(loaded)
	return loaded, errs
}

// modaliases returns the modalias of every device on every bus.
func modaliases(sysfs string) []string {
	files, _ := filepath.Glob(filepath.Join(sysfs, "bus/*/devices/*/modalias"))
	seen := map[string]bool{}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		ma := strings.TrimSpace(string(b))
		if ma != "" && !seen[ma] {
			seen[ma] = true
			out = append(out, ma)
		}
	}
	return out
}

func finit(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.FinitModule(int(f.Fd()), "", 0)
}
