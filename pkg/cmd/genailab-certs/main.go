// Command genailab-certs makes a lab certificate authority and the certificates of the
// lab's hosts and callers, for a quick start with mutual TLS (ECDSA P-256, TLS 1.3):
//
//	genailab-certs ca -out /etc/genailab/pki                    # ca.crt, ca.key (0600)
//	genailab-certs host -ca /etc/genailab/pki -name host1 -dns host1,host1.lab -ip 10.0.0.5 -out ./host1
//	genailab-certs client -ca /etc/genailab/pki -name gateway -out ./gateway
//
// A host certificate serves (and may also dial: the orchestrator uses one for both); a
// client certificate only dials. host and client also copy ca.crt into -out, so that one
// directory holds what a machine needs. Keys are written 0600, certificates 0644, each
// atomically; an existing file is never replaced without -force.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"time"

	"github.com/genailab/genailab/pkg/cmdmain"
	"github.com/genailab/genailab/pkg/tlsconfig/pki"
)

func main() {
	cmdmain.Exit("genailab-certs", run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  genailab-certs ca     -out DIR [-cn NAME] [-days N] [-force]
  genailab-certs host   -ca DIR -name NAME [-dns A,B] [-ip X,Y] [-days N] -out DIR [-force]
  genailab-certs client -ca DIR -name NAME [-days N] -out DIR [-force]
Run a command with -h for its flags.
`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "ca":
		return runCA(args[1:], stdout, stderr)
	case "host":
		return runLeaf("host", pki.HostUsage, args[1:], stdout, stderr)
	case "client":
		return runLeaf("client", pki.ClientUsage, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func runCA(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("genailab-certs ca", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory for ca.crt and ca.key (created 0700 if missing; required)")
	cn := fs.String("cn", "genailab lab CA", "common name of the CA")
	days := fs.Int("days", int(pki.DefaultCAValidity.Hours()/24), "validity in days")
	force := fs.Bool("force", false, "overwrite existing files")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("ca: -out is required")
	}
	validity, err := validityDays(*days)
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	ca, err := pki.NewCA(*cn, validity)
	if err != nil {
		return err
	}
	key, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	p := newPaths(*out)
	if err := pki.WriteFiles([]pki.File{
		{Path: p.caCert, Data: ca.CertPEM, Mode: 0o644},
		{Path: p.caKey, Data: key, Mode: 0o600},
	}, *force); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s and %s (keep the key offline; it signs every lab certificate)\n", p.caCert, p.caKey)
	describe(stdout, ca.Cert)
	return nil
}

func runLeaf(kind string, usage pki.Usage, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("genailab-certs "+kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	caDir := fs.String("ca", "", "directory of ca.crt and ca.key (required)")
	name := fs.String("name", "", "name of the "+kind+": common name and file names <name>.crt, <name>.key (required)")
	out := fs.String("out", "", "directory for <name>.crt, <name>.key and a copy of ca.crt (created 0700 if missing; required)")
	days := fs.Int("days", int(pki.DefaultLeafValidity.Hours()/24), "validity in days")
	force := fs.Bool("force", false, "overwrite existing files")
	var dns, ips *string
	if usage == pki.HostUsage {
		dns = fs.String("dns", "", "comma-separated DNS names the host is reached by (default: -name)")
		ips = fs.String("ip", "", "comma-separated IP addresses the host is reached by")
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *caDir == "" || *name == "" || *out == "" {
		return fmt.Errorf("%s: -ca, -name and -out are required", kind)
	}
	if err := checkName(*name); err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	validity, err := validityDays(*days)
	if err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	req := pki.Request{CommonName: *name, Usage: usage}
	if usage == pki.HostUsage {
		d := *dns
		if d == "" {
			d = *name
		}
		if req.DNSNames, err = parseDNS(d); err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		if req.IPs, err = parseIPs(*ips); err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
	}
	src := newPaths(*caDir)
	ca, err := loadCA(src)
	if err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	if ca.Cert.NotAfter.Before(time.Now().Add(validity)) {
		return fmt.Errorf("%s: the CA expires on %s, before the %d days asked for", kind, ca.Cert.NotAfter.UTC().Format("2006-01-02"), *days)
	}
	req.NotAfter = time.Now().Add(validity)
	is, err := ca.Issue(req)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	dst := newPaths(*out)
	files := []pki.File{
		{Path: dst.cert(*name), Data: is.CertPEM, Mode: 0o644},
		{Path: dst.key(*name), Data: is.KeyPEM, Mode: 0o600},
	}
	// The CA certificate goes along, unless the very same one is there already.
	existing, err := os.ReadFile(dst.caCert)
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		files = append(files, pki.File{Path: dst.caCert, Data: ca.CertPEM, Mode: 0o644})
	case err != nil:
		return fmt.Errorf("%s: %w", kind, err)
	case !bytes.Equal(existing, ca.CertPEM):
		if !*force {
			return fmt.Errorf("%s: %s holds another CA certificate: %w", kind, dst.caCert, pki.ErrExists)
		}
		files = append(files, pki.File{Path: dst.caCert, Data: ca.CertPEM, Mode: 0o644})
	}
	if err := pki.WriteFiles(files, *force); err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	fmt.Fprintf(stdout, "wrote %s and %s (with %s)\n", dst.cert(*name), dst.key(*name), dst.caCert)
	describe(stdout, is.Cert)
	return nil
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return nil
}
