/**
 * A throwaway PKI for TLS tests, made with Debian's `openssl` in a temp dir:
 * a test CA, a server certificate it signed for 127.0.0.1 and localhost, and
 * an unrelated CA that must not be trusted. `dispose()` removes the dir.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestPki {
  dir: string;
  /** PEM file of the CA that signed the server certificate. */
  caFile: string;
  /** PEM file of an unrelated CA. */
  wrongCaFile: string;
  /** Server certificate and key (PEM) for startDevServer({ tls }). */
  cert: Buffer;
  key: Buffer;
  dispose(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

function makeCa(dir: string, name: string): void {
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${name}.key`], dir);
  openssl(
    [
      "req",
      "-x509",
      "-new",
      "-key",
      `${name}.key`,
      "-sha256",
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-out",
      `${name}.pem`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
}

/** Makes the CA, the server certificate and the wrong CA. Takes well under a second. */
export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "engram-tls-"));
  makeCa(dir, "test-ca");
  makeCa(dir, "wrong-ca");
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "server.key"], dir);
  openssl(["req", "-new", "-key", "server.key", "-subj", "/CN=127.0.0.1", "-out", "server.csr"], dir);
  writeFileSync(
    join(dir, "server.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
  );
  openssl(
    [
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "test-ca.pem",
      "-CAkey",
      "test-ca.key",
      "-CAcreateserial",
      "-days",
      "2",
      "-sha256",
      "-extfile",
      "server.ext",
      "-out",
      "server.pem",
    ],
    dir,
  );
  return {
    dir,
    caFile: join(dir, "test-ca.pem"),
    wrongCaFile: join(dir, "wrong-ca.pem"),
    cert: readFileSync(join(dir, "server.pem")),
    key: readFileSync(join(dir, "server.key")),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
