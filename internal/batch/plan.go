package batch

import (
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"

	"github.com/go-wxacode/wxacode"
)

// job is one code to make and the first name to write it under. Further
// names of the same code (rare) and a file already holding the code live
// in the plan's side tables, so that a job is 80 bytes and a batch of
// 100,000 rows holds 8 MB of jobs.
type job struct {
	key   requestKey
	first row // the first row whose name needs the code
}

// plan is what reading the input decided.
type plan struct {
	jobs       []job
	more       map[int32][]row  // job index -> rows of further names
	copyFrom   map[int32]string // job index -> a file in the directory already holding its code
	fails      []failure        // found locally
	rows       int              // rows read
	present    int              // names already holding their code
	unrecorded int              // complete images without a record of this run's origin and request: minted again
	duplicates int              // rows repeating an earlier row's request and name
	ignored    []string         // the input's columns not used
}

// rowsOf calls each for the rows whose names need job i's code, in order.
func (p *plan) rowsOf(i int32, each func(row)) {
	each(p.jobs[i].first)
	for _, rw := range p.more[i] {
		each(rw)
	}
}

// digest is a 128-bit hash standing for a string in the planner's sets: a
// few bytes a row whatever the string's length.
type digest [16]byte

func digestOf(parts ...string) digest {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var d digest
	copy(d[:], h.Sum(nil))
	return d
}

// requestFor is the request of a row: tmpl's code flags with scene, and
// page unless empty.
func requestFor(tmpl wxacode.Request, scene, page string) wxacode.Request {
	r := tmpl
	r.Scene = scene
	if page != "" {
		r.Page = page
	}
	return r
}

// planner turns rows into jobs as they are read, in four steps a row
// (add): check it (long records, file names, the API's rules), claim its
// file name in this run, look at the image already under that name, and
// group it with the rows of the same request. It holds a few hundred
// bytes a row.
type planner struct {
	tmpl     wxacode.Request
	dir      string
	force    bool
	foldCase bool
	man      *manifest
	origin   short // the API and account of this run (see ManifestFile)

	plan    plan
	probe   imageProbe
	byKey   map[requestKey]int32 // request -> index in plan.jobs, or -1 - index in sources
	sources []string             // present images of requests that have no job yet
	names   map[digest]nameUse   // file name (folded on such a directory) -> the row that took it
	invalid map[digest]struct{}  // request and name of rows that break the API's rules
}

// nameUse is the row that took a file name: its line, its request, and a
// hash of the name as written (on a case-folding directory, the folded
// name alone would not tell a repeat from a clash).
type nameUse struct {
	line  int32
	exact uint32
	key   requestKey
}

func newPlanner(cfg *Config, foldCase bool, man *manifest) *planner {
	return &planner{tmpl: cfg.Request, dir: cfg.Dir, force: cfg.Force, foldCase: foldCase, man: man, origin: shortOf(cfg.Origin),
		plan:  plan{more: map[int32][]row{}, copyFrom: map[int32]string{}},
		byKey: map[requestKey]int32{}, names: map[digest]nameUse{}, invalid: map[digest]struct{}{}}
}

// add plans one row.
func (pl *planner) add(rw row) {
	pl.plan.rows++
	base, key, ok := pl.check(rw)
	if !ok || !pl.claim(rw, base, key) || pl.alreadyThere(rw, base, key) {
		return
	}
	pl.addJob(rw, key)
}

// fail lists rw as failed for msg.
func (pl *planner) fail(rw row, msg string) {
	pl.plan.fails = append(pl.plan.fails, failure{row: rw, errmsg: msg})
}

// check fails a row that cannot be minted: an over-long record, an unsafe
// file name, a request that breaks the API's rules (once per request and
// name; a repeat is a duplicate). It returns the row's file name and
// request.
func (pl *planner) check(rw row) (string, requestKey, bool) {
	if rw.long {
		pl.fail(rw, "record is over "+strconv.Itoa(maxRecord)+" bytes: not a scene")
		return "", requestKey{}, false
	}
	if rw.filename != "" {
		if _, err := checkFilename(rw.filename); err != nil {
			pl.fail(rw, err.Error())
			return "", requestKey{}, false
		}
	}
	base := rw.base()
	req := requestFor(pl.tmpl, rw.scene, rw.page)
	key, _ := parseKey(req.Key())
	if err := req.Validate(); err != nil {
		d := digestOf(string(key[:]), base)
		if _, dup := pl.invalid[d]; dup {
			pl.plan.duplicates++
			return "", key, false
		}
		pl.invalid[d] = struct{}{}
		pl.fail(rw, strings.TrimPrefix(err.Error(), "wxacode: "))
		return "", key, false
	}
	return base, key, true
}

// claim takes base for rw in this run. The same request under the same
// name again is a duplicate; another request under a name already taken
// (or one differing only in case, on a directory that ignores case) fails.
func (pl *planner) claim(rw row, base string, key requestKey) bool {
	nameKey := base
	if pl.foldCase {
		nameKey = strings.ToLower(base)
	}
	nd, exact := digestOf(nameKey), crc32.ChecksumIEEE([]byte(base))
	use, taken := pl.names[nd]
	if !taken {
		pl.names[nd] = nameUse{line: rw.line, exact: exact, key: key}
		return true
	}
	if use.key == key && use.exact == exact {
		pl.plan.duplicates++
		return false
	}
	msg := fmt.Sprintf("file name %s is also the name for line %d", base, use.line)
	if pl.foldCase {
		msg += " (the output directory ignores case)"
	}
	pl.fail(rw, msg)
	return false
}

// alreadyThere looks at the complete image under base, unless force: one
// the manifest records for rw's request from this origin is done (and a
// source for other names of the code); a name the manifest holds for
// another scene fails, never replaced; anything else (other flags, API or
// account, or no record) is minted again. It reports whether rw is
// settled.
func (pl *planner) alreadyThere(rw row, base string, key requestKey) bool {
	if pl.force {
		return false
	}
	name := pl.probe.present(pl.dir, base)
	if name == "" {
		return false
	}
	rec, recorded := pl.man.lookup(name)
	switch {
	case recorded && rec.scene != shortOf(rw.scene):
		pl.fail(rw, fmt.Sprintf("file name %s already holds the code of another scene (by %s): give this row another filename, or run with -force to replace it", name, ManifestFile))
		return true
	case recorded && rec.key == key && rec.origin == pl.origin:
		pl.plan.present++
		if i, ok := pl.byKey[key]; !ok {
			pl.byKey[key] = -1 - int32(len(pl.sources))
			pl.sources = append(pl.sources, name)
		} else if i >= 0 {
			pl.plan.copyFrom[i] = name
		}
		return true
	case !recorded:
		pl.plan.unrecorded++
	}
	return false
}

// addJob adds rw to the job of its request, or starts one (copied from a
// present image of the request, if there is one).
func (pl *planner) addJob(rw row, key requestKey) {
	p := &pl.plan
	i, ok := pl.byKey[key]
	switch {
	case ok && i >= 0:
		p.more[i] = append(p.more[i], rw)
		return
	case ok:
		p.copyFrom[int32(len(p.jobs))] = pl.sources[-1-i]
	}
	pl.byKey[key] = int32(len(p.jobs))
	p.jobs = append(p.jobs, job{key: key, first: rw})
}

// finish returns the plan, letting the planner's sets go.
func (pl *planner) finish() plan {
	p := pl.plan
	pl.byKey, pl.sources, pl.names, pl.invalid = nil, nil, nil, nil
	return p
}
