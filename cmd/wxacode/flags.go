package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-wxacode/wxacode"
	"github.com/go-wxacode/wxacode/internal/baseurl"
	"github.com/go-wxacode/wxacode/wxacodetest"
)

// codeFlags are the flags both commands share: what a code looks like and
// where the API is.
type codeFlags struct {
	page          string
	width         int
	env           string
	skipPathCheck bool
	color         string
	autoColor     bool
	transparent   bool
	fake          bool
	baseURL       string
	timeout       time.Duration
}

func (f *codeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.page, "page", "", "page to open, e.g. pages/item/index (default: home page)")
	fs.IntVar(&f.width, "width", 0, "width in pixels, 280 to 1280 (default 430)")
	fs.StringVar(&f.env, "env", "", "release, trial or develop (default release)")
	fs.BoolVar(&f.skipPathCheck, "skip-path-check", false, "allow a page not in the published release (check_path=false)")
	fs.StringVar(&f.color, "color", "", "line colour as RRGGBB, e.g. 07C160 (default black)")
	fs.BoolVar(&f.autoColor, "auto-color", false, "let WeChat pick the line colour")
	fs.BoolVar(&f.transparent, "transparent", false, "transparent background (the service then answers PNG)")
	fs.BoolVar(&f.fake, "fake", false, "run against an embedded fake of the WeChat API (no credentials needed); its quota is the service's 5000 calls a minute, so a larger batch pauses each minute")
	fs.StringVar(&f.baseURL, "base-url", "", "API base URL, for proxies and test servers (default "+wxacode.DefaultBaseURL+")")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "limit for each HTTP exchange with the API; time queued for the rate limit or between retries is not counted")
}

// newFlagSet returns a FlagSet that prints nothing itself: parse reports
// errors in one line, and -h prints help to stdout.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses args; it returns (0, false) to go on, or an exit code.
func (a *app) parse(fs *flag.FlagSet, args []string, help string) (int, bool) {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(a.stdout, help)
		fs.SetOutput(a.stdout)
		fs.PrintDefaults()
		return exitOK, true
	}
	if err != nil {
		return a.usageError("wxacode "+fs.Name(), err), true
	}
	if fs.NArg() > 0 {
		return a.usageError("wxacode "+fs.Name(), fmt.Errorf("unexpected argument %q", fs.Arg(0))), true
	}
	return 0, false
}

// request returns the request for scene with the flags' settings; page, if
// not empty, overrides -page.
func (f *codeFlags) request(scene, page string) wxacode.Request {
	r := wxacode.Request{
		Scene:         scene,
		Page:          f.page,
		SkipPathCheck: f.skipPathCheck,
		EnvVersion:    wxacode.EnvVersion(f.env),
		Width:         f.width,
		AutoColor:     f.autoColor,
		IsHyaline:     f.transparent,
	}
	if page != "" {
		r.Page = page
	}
	r.LineColor, _ = parseColor(f.color) // checked by check
	return r
}

// check reports flag values that cannot work, before any work starts.
func (f *codeFlags) check() error {
	if f.color != "" && f.autoColor {
		return errors.New("-color and -auto-color exclude each other")
	}
	if _, err := parseColor(f.color); err != nil {
		return err
	}
	if f.fake && f.baseURL != "" {
		return errors.New("-fake and -base-url exclude each other")
	}
	if f.timeout <= 0 {
		return errors.New("-timeout must be positive")
	}
	if f.baseURL != "" {
		if err := checkBaseURL(f.baseURL); err != nil {
			return err
		}
	}
	// The rules of the API, with the scene left out: it is per code.
	probe := f.request("a", "")
	return f.flagError(probe.Validate(), "")
}

// flagError says what is wrong with a request in the terms of the flags
// that made it (-width, -env, -page, -scene), not of the API's fields.
func (f *codeFlags) flagError(err error, scene string) error {
	var ve *wxacode.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	switch ve.Field {
	case "width":
		return fmt.Errorf("-width %d must be from 280 to 1280 (leave it out for the default 430)", f.width)
	case "env_version":
		return fmt.Errorf("-env %q must be release, trial or develop (leave it out for release)", f.env)
	case "page":
		return fmt.Errorf("-page %q %s", f.page, ve.Reason)
	case "scene":
		return fmt.Errorf("-scene %q %s", scene, ve.Reason)
	}
	return err
}

// checkBaseURL accepts the base URLs the library accepts.
func checkBaseURL(raw string) error {
	if baseurl.Check(raw) != nil {
		return fmt.Errorf("-base-url %q must be http:// or https:// with a host, such as https://api.weixin.qq.com", raw)
	}
	return nil
}

// parseColor reads RRGGBB, with or without a leading "#".
func parseColor(s string) (wxacode.Color, error) {
	if s == "" {
		return wxacode.Color{}, nil
	}
	hex := strings.TrimPrefix(s, "#")
	v, err := strconv.ParseUint(hex, 16, 32)
	if len(hex) != 6 || err != nil {
		return wxacode.Color{}, fmt.Errorf("-color %q is not RRGGBB (six hex digits, e.g. 07C160)", s)
	}
	return wxacode.Color{R: uint8(v >> 16), G: uint8(v >> 8), B: uint8(v)}, nil
}

// parseRate reads N, N/min, N/s or N/h as calls per minute.
func parseRate(s string) (int, time.Duration, error) {
	num, unit, _ := strings.Cut(s, "/")
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 {
		return 0, 0, fmt.Errorf("-rate %q: want a positive number of calls, such as 4500/min", s)
	}
	switch unit {
	case "", "min", "m":
		return n, time.Minute, nil
	case "s", "sec":
		return n, time.Second, nil
	case "h":
		return n, time.Hour, nil
	}
	return 0, 0, fmt.Errorf("-rate %q: the unit must be /s, /min or /h", s)
}

// client returns a Client configured from the flags and the environment,
// and a function that releases what it started (the embedded fake). With
// calls not nil, it counts every getwxacodeunlimit request sent (retries
// too).
func (a *app) client(f *codeFlags, calls *atomic.Int64, extra ...wxacode.Option) (*wxacode.Client, func(), error) {
	base := f.baseURL
	if base == "" {
		base = wxacode.DefaultBaseURL
	}
	cleanup := func() {}
	appID, secret, token := a.getenv("WECHAT_APPID"), a.getenv("WECHAT_SECRET"), a.getenv("WECHAT_ACCESS_TOKEN")
	if f.fake {
		srv := wxacodetest.NewServer()
		cleanup = srv.Close
		base, appID, secret, token = srv.URL, srv.AppID(), srv.AppSecret(), ""
	}
	// -timeout bounds each exchange, through the HTTP client: a deadline on
	// the call's context would also run while the call waits for its turn
	// under the rate limit.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = maxConcurrency
	hc := &http.Client{Transport: transport, Timeout: f.timeout}
	if calls != nil {
		hc.Transport = &callCounter{next: transport, calls: calls}
	}
	common := []wxacode.Option{wxacode.WithBaseURL(base), wxacode.WithHTTPClient(hc)}
	opts := append(common, extra...)
	var ts wxacode.TokenSource
	switch {
	case token != "": // a.staticToken
		ts = wxacode.StaticToken(token)
	case appID != "" && secret != "":
		ts = wxacode.NewStableTokenSource(appID, secret, common...)
	default:
		cleanup()
		return nil, nil, errors.New("no credentials: set WECHAT_APPID and WECHAT_SECRET, or WECHAT_ACCESS_TOKEN, or use -fake")
	}
	return wxacode.NewClient(ts, opts...), cleanup, nil
}

// staticToken reports whether the token is WECHAT_ACCESS_TOKEN's (see
// client): one the command cannot renew.
func (a *app) staticToken(f *codeFlags) bool {
	return !f.fake && a.getenv("WECHAT_ACCESS_TOKEN") != ""
}

// origin names where a run's codes come from, for the manifest: the
// embedded fake, or the API's base URL and the account's AppID
// (WECHAT_APPID; with WECHAT_ACCESS_TOKEN alone the account is unknown,
// and such a run keeps only the images of runs that did not name one
// either).
func (a *app) origin(f *codeFlags) string {
	if f.fake {
		return "fake"
	}
	base := f.baseURL
	if base == "" {
		base = wxacode.DefaultBaseURL
	}
	return strings.TrimRight(base, "/") + " " + a.getenv("WECHAT_APPID")
}

// callCounter counts the getwxacodeunlimit requests a transport sends.
type callCounter struct {
	next  http.RoundTripper
	calls *atomic.Int64
}

func (c *callCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/wxa/getwxacodeunlimit") {
		c.calls.Add(1)
	}
	return c.next.RoundTrip(r)
}

// staticTokenHint is the hint for a WECHAT_ACCESS_TOKEN the API refused.
const staticTokenHint = "WECHAT_ACCESS_TOKEN is not a valid access token of this account, or it has expired (tokens last 2 hours): set a fresh one, or unset it and set WECHAT_APPID and WECHAT_SECRET so that the command fetches its own"

// hint says how to fix err, in the command's terms: for 41030 it names
// -skip-path-check where the library names SkipPathCheck, and for a
// refused or expired token that came from WECHAT_ACCESS_TOKEN (static) it
// names the variable.
func hint(err *wxacode.APIError, static bool) string {
	switch {
	case err.Code == wxacode.CodeInvalidPage:
		return "the page is not in the released version: publish it, or pass -skip-path-check (check_path=false) to make codes for a page that only a trial or develop version has"
	case static && refusesToken(err.Code):
		return staticTokenHint
	}
	return err.Hint()
}

// refusesToken reports whether code says the access_token was refused.
func refusesToken(code int) bool {
	switch code {
	case wxacode.CodeInvalidCredential, wxacode.CodeInvalidAccessToken, wxacode.CodeAccessTokenExpired:
		return true
	}
	return false
}
