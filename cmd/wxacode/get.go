package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/go-wxacode/wxacode"
	"github.com/go-wxacode/wxacode/internal/atomicfile"
)

const getHelp = `Usage: wxacode get -scene S -o FILE [flags]

Mints one code and writes it to FILE ("-" for standard output). The service
answers JPEG by default and PNG with -transparent.

FILE may be a symlink (its target is replaced atomically and the link
stays), a FIFO or a device such as /dev/stdout (written in place); a
directory is refused before any call.

Examples:
  wxacode get -fake -scene 'id=42' -o code.jpg
  wxacode get -scene 'id=42' -page pages/item/index -width 600 -o item-42.jpg
  wxacode get -scene 'id=42' -transparent -color 07C160 -o - > code.png

` + exitCodesHelp + `
Flags:
`

// get runs "wxacode get".
func (a *app) get(ctx context.Context, args []string) int {
	f, scene, out, dst, code, stop := a.parseGet(args)
	if stop {
		return code
	}
	client, cleanup, err := a.client(f, nil)
	if err != nil {
		return a.usageError("wxacode get", err)
	}
	defer cleanup()
	img, err := client.GetUnlimited(ctx, f.request(scene, ""))
	if err != nil {
		return a.getFailed(err, a.staticToken(f))
	}
	return a.writeCode(out, dst, img)
}

// parseGet parses and checks the flags, and where -o points, before any
// call; it returns stop and an exit code when there is nothing to call.
func (a *app) parseGet(args []string) (f *codeFlags, scene, out string, dst output, code int, stop bool) {
	fs := newFlagSet("get")
	f = &codeFlags{}
	f.register(fs)
	sceneFlag := fs.String("scene", "", "the scene (required): at most 32 characters of 0-9 A-Z a-z !#$&'()*+,/:;=?@-._~")
	outFlag := fs.String("o", "", `output file, "-" for standard output (required)`)
	if code, stop := a.parse(fs, args, getHelp); stop {
		return nil, "", "", dst, code, true
	}
	scene, out = *sceneFlag, *outFlag
	fail := func(err error) (*codeFlags, string, string, output, int, bool) {
		return nil, "", "", dst, a.usageError("wxacode get", err), true
	}
	switch {
	case scene == "":
		return fail(errors.New("-scene is required"))
	case out == "":
		return fail(errors.New("-o is required (a file, or - for standard output)"))
	}
	if err := f.check(); err != nil {
		return fail(err)
	}
	if err := f.request(scene, "").Validate(); err != nil {
		return fail(f.flagError(err, scene))
	}
	if out != "-" {
		// Before spending a call: -o names something a file can be
		// written to.
		var err error
		if dst, err = resolveOutput(out); err != nil {
			return fail(err)
		}
		if !dst.inPlace {
			if err := atomicfile.CheckDir(dst.dir, false); err != nil {
				return fail(err)
			}
		}
	}
	return f, scene, out, dst, 0, false
}

// getFailed reports a call that failed, with the hint for an API error,
// and returns the exit code.
func (a *app) getFailed(err error, static bool) int {
	var apiErr *wxacode.APIError
	if errors.As(err, &apiErr) {
		fmt.Fprintf(a.stderr, "wxacode get: errcode %d: %s\n", apiErr.Code, apiErr.Message)
		if h := hint(apiErr, static); h != "" {
			fmt.Fprintf(a.stderr, "hint: %s\n", h)
		}
	} else {
		fmt.Fprintf(a.stderr, "wxacode get: %s\n", strings.TrimPrefix(err.Error(), "wxacode: "))
	}
	if errors.Is(err, context.Canceled) {
		return exitInterrupted
	}
	return exitFailed
}

// writeCode writes img to out ("-": standard output; else dst) and says
// what it wrote.
func (a *app) writeCode(out string, dst output, img []byte) int {
	if out == "-" {
		if _, err := a.stdout.Write(img); err != nil {
			fmt.Fprintf(a.stderr, "wxacode get: write: %v\n", err)
			return exitFailed
		}
		return exitOK
	}
	if err := dst.write(img); err != nil {
		fmt.Fprintf(a.stderr, "wxacode get: %v\n", err)
		return exitFailed
	}
	kind := http.DetectContentType(img)
	fmt.Fprintf(a.stderr, "wrote %s (%s, %d bytes)\n", out, kind, len(img))
	if ext := wxacode.ImageExt(img); !dst.inPlace && !strings.EqualFold(filepath.Ext(out), ext) && !(ext == ".jpg" && strings.EqualFold(filepath.Ext(out), ".jpeg")) {
		fmt.Fprintf(a.stderr, "note: %s holds %s; %s would be the usual name\n", out, kind, strings.TrimSuffix(out, filepath.Ext(out))+ext)
	}
	return exitOK
}
