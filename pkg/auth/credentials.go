package auth

import "context"

// TokenCredentials is a grpc.PerRPCCredentials that sends a bearer token with every call.
type TokenCredentials struct {
	Token string
	// Secure requires a TLS connection; set it false only for loopback or trusted links.
	Secure bool
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (c TokenCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	if c.Token == "" {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + c.Token}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (c TokenCredentials) RequireTransportSecurity() bool { return c.Secure }
