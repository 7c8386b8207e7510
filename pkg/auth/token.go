// Package auth guards gRPC servers and HTTP handlers with a bearer token, and gives
// clients the per-RPC credentials that carry it.
//
// The token travels as the "authorization: Bearer <token>" metadata (HTTP header).
// It is compared in constant time and never logged. The standard health service stays
// open so that probes (Kubernetes, systemd, load balancers) work without the secret.
package auth

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// healthPrefix names the methods that never need a token.
const healthPrefix = "/grpc.health.v1.Health/"

// Guard checks bearer tokens. The zero Guard (no token) lets everything through.
type Guard struct {
	token []byte
	log   *slog.Logger
}

// NewGuard returns a Guard for token; an empty token disables the check.
func NewGuard(token string, log *slog.Logger) *Guard {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Guard{log: log}
	if token != "" {
		g.token = []byte(token)
	}
	return g
}

// Enabled reports whether a token is required.
func (g *Guard) Enabled() bool { return len(g.token) > 0 }

// Check reports whether an Authorization header value carries the right token.
func (g *Guard) Check(authorization string) bool {
	if !g.Enabled() {
		return true
	}
	const prefix = "bearer "
	if len(authorization) < len(prefix) || !strings.EqualFold(authorization[:len(prefix)], prefix) {
		return false
	}
	got := []byte(strings.TrimSpace(authorization[len(prefix):]))
	return subtle.ConstantTimeCompare(got, g.token) == 1
}

func (g *Guard) authorize(ctx context.Context, method string) error {
	if !g.Enabled() || strings.HasPrefix(method, healthPrefix) {
		return nil
	}
	var value string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			value = v[0]
		}
	}
	if g.Check(value) {
		return nil
	}
	from := "unknown"
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		from = p.Addr.String()
	}
	reason := "missing bearer token"
	if value != "" {
		reason = "wrong bearer token"
	}
	g.log.Warn("refused unauthenticated call", "method", method, "peer", from, "reason", reason)
	return status.Error(codes.Unauthenticated, reason)
}

// UnaryInterceptor refuses unary calls without the token.
func (g *Guard) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := g.authorize(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor refuses streaming calls without the token.
func (g *Guard) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := g.authorize(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// Middleware refuses HTTP requests without the token (401, {"error": "..."}), except
// the paths listed in open (health checks).
func (g *Guard) Middleware(next http.Handler, open ...string) http.Handler {
	if !g.Enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range open {
			if r.URL.Path == p {
				next.ServeHTTP(w, r)
				return
			}
		}
		if g.Check(r.Header.Get("Authorization")) {
			next.ServeHTTP(w, r)
			return
		}
		g.log.Warn("refused unauthenticated request", "method", r.Method, "path", r.URL.Path, "peer", r.RemoteAddr)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("WWW-Authenticate", `Bearer realm="genailab"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"missing or wrong bearer token"}` + "\n"))
	})
}
