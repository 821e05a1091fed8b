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
	fs := newFlagSet("get")
	var f codeFlags
	f.register(fs)
	scene := fs.String("scene", "", "the scene (required): at most 32 characters of 0-9 A-Z a-z !#$&'()*+,/:;=?@-._~")
	out := fs.String("o", "", `output file, "-" for standard output (required)`)
	if code, stop := a.parse(fs, args, getHelp); stop {
		return code
	}
	switch {
	case *scene == "":
		return a.usageError("wxacode get", errors.New("-scene is required"))
	case *out == "":
		return a.usageError("wxacode get", errors.New("-o is required (a file, or - for standard output)"))
	}
	if err := f.check(); err != nil {
		return a.usageError("wxacode get", err)
	}
	req := f.request(*scene, "")
	if err := req.Validate(); err != nil {
		return a.usageError("wxacode get", f.flagError(err, *scene))
	}
	var dst output
	if *out != "-" {
		// Before spending a call: -o names something a file can be
		// written to.
		var err error
		if dst, err = resolveOutput(*out); err != nil {
			return a.usageError("wxacode get", err)
		}
		if !dst.inPlace {
			if err := atomicfile.CheckDir(dst.dir, false); err != nil {
				return a.usageError("wxacode get", err)
			}
		}
	}
	client, cleanup, err := a.client(&f, nil)
	if err != nil {
		return a.usageError("wxacode get", err)
	}
	defer cleanup()

	img, err := client.GetUnlimited(ctx, req)
	if err != nil {
		var apiErr *wxacode.APIError
		if errors.As(err, &apiErr) {
			fmt.Fprintf(a.stderr, "wxacode get: errcode %d: %s\n", apiErr.Code, apiErr.Message)
			if h := hint(apiErr, a.staticToken(&f)); h != "" {
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
	if *out == "-" {
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
	fmt.Fprintf(a.stderr, "wrote %s (%s, %d bytes)\n", *out, kind, len(img))
	if ext := wxacode.ImageExt(img); !dst.inPlace && !strings.EqualFold(filepath.Ext(*out), ext) && !(ext == ".jpg" && strings.EqualFold(filepath.Ext(*out), ".jpeg")) {
		fmt.Fprintf(a.stderr, "note: %s holds %s; %s would be the usual name\n", *out, kind, strings.TrimSuffix(*out, filepath.Ext(*out))+ext)
	}
	return exitOK
}
