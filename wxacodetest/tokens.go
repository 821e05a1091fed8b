package wxacodetest

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"time"
)

// Token endpoint rules of the real service.
const (
	oldTokenGrace        = 5 * time.Minute  // a replaced token keeps working this long
	maxRotationWindow    = 5 * time.Minute  // stable_token hands out a new token in the old one's last 5 minutes
	forceRefreshInterval = 30 * time.Second // forced refreshes closer together are ignored
	maxForcedPerDay      = 20
)

// tokenAnswer is the JSON answer of both token endpoints.
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// handleToken serves GET /cgi-bin/token (getAccessToken): a new token each
// call; earlier ones stay valid for 5 more minutes.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.serveToken(w, func() (int, issued) {
		if code := s.checkCredentialsLocked(q.Get("grant_type"), q.Get("appid"), q.Get("secret")); code != 0 {
			return code, issued{}
		}
		now := s.nowLocked()
		for _, info := range s.tokens {
			if !info.stable && info.expiresAt.After(now.Add(oldTokenGrace)) {
				info.expiresAt = now.Add(oldTokenGrace)
			}
		}
		return 0, s.issueLocked(false)
	})
}

// serveToken counts a token request, runs decide under the lock, and
// answers the token it issued or the errcode it chose.
func (s *Server) serveToken(w http.ResponseWriter, decide func() (int, issued)) {
	s.mu.Lock()
	s.tokenRequests++
	code, t := decide()
	rid := s.nextRIDLocked()
	now := s.nowLocked()
	s.mu.Unlock()
	if code != 0 {
		s.writeError(w, code, rid)
		return
	}
	writeJSON(w, tokenAnswer{AccessToken: t.value, ExpiresIn: secondsLeft(t.expiresAt, now)})
}

// stableTokenBody is the body of POST /cgi-bin/stable_token.
type stableTokenBody struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

// handleStableToken serves POST /cgi-bin/stable_token.
func (s *Server) handleStableToken(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	var body stableTokenBody
	parseErr := json.Unmarshal(raw, &body)
	s.serveToken(w, func() (int, issued) {
		if parseErr != nil {
			return 47001, issued{} // data format error
		}
		if code := s.checkCredentialsLocked(body.GrantType, body.AppID, body.Secret); code != 0 {
			return code, issued{}
		}
		if body.ForceRefresh && !s.allowForceLocked() {
			return 45009, issued{}
		}
		return 0, s.stableTokenLocked(body.ForceRefresh)
	})
}

// checkCredentialsLocked returns the errcode for a bad token request, or 0.
func (s *Server) checkCredentialsLocked(grantType, appID, secret string) int {
	switch {
	case grantType != "client_credential":
		return 40002
	case appID == "":
		return 41002
	case appID != s.cfg.appID:
		return 40013
	case secret == "":
		return 41004
	case secret != s.cfg.secret:
		return 40125
	}
	return 0
}

// allowForceLocked counts a forced refresh against the daily limit.
func (s *Server) allowForceLocked() bool {
	now := s.nowLocked()
	kept := s.forcedToday[:0]
	for _, at := range s.forcedToday {
		if now.Sub(at) < 24*time.Hour {
			kept = append(kept, at)
		}
	}
	s.forcedToday = kept
	if len(kept) >= maxForcedPerDay {
		return false
	}
	s.forcedToday = append(s.forcedToday, now)
	return true
}

// stableTokenLocked returns the current stable token, replacing it when it
// is in its last minutes or expired, or at once when force is set (unless a
// forced refresh happened in the last 30 s, which the service ignores).
func (s *Server) stableTokenLocked(force bool) issued {
	now := s.nowLocked()
	cur, ok := s.tokens[s.stable]
	window := min(maxRotationWindow, s.cfg.expiresIn/4)
	switch {
	case force && (s.lastForced.IsZero() || now.Sub(s.lastForced) >= forceRefreshInterval):
		s.lastForced = now
		if ok {
			cur.expiresAt = now // a forced refresh invalidates the old token at once
		}
	case !ok || !now.Before(cur.expiresAt.Add(-window)):
		// First call, or the old token is in its last minutes: a new one,
		// the old one still valid until it expires.
	default:
		return issued{value: s.stable, expiresAt: cur.expiresAt}
	}
	t := s.issueLocked(true)
	s.stable = t.value
	return t
}

// issueLocked makes and records a new token, from stable_token or not (the
// two kinds are independent, as on the real service).
func (s *Server) issueLocked(stable bool) issued {
	t := issued{value: "fake-" + randomHex(24), expiresAt: s.nowLocked().Add(s.cfg.expiresIn), stable: stable}
	s.tokens[t.value] = &t
	return t
}

// tokenStatusLocked returns 0 for a valid token, else the errcode it earns.
func (s *Server) tokenStatusLocked(token string) int {
	if token == "" {
		return 41001
	}
	info, ok := s.tokens[token]
	if !ok {
		return 40001
	}
	if !s.nowLocked().Before(info.expiresAt) {
		return 42001
	}
	return 0
}

// secondsLeft is expires_in: whole seconds until at, rounded up.
func secondsLeft(at, now time.Time) int64 {
	return int64(math.Ceil(at.Sub(now).Seconds()))
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", jsonContentType)
	_ = json.NewEncoder(w).Encode(v)
}
