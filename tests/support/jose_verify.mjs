// Verify a trikchi access token with jose (https://github.com/panva/jose), an implementation
// nobody on the project wrote: the keys come from the live JWKS (createRemoteJWKSet), jose
// picks the key by kid and pins the algorithm to the key's, and checks iss (and aud).
//
//   node tests/support/jose_verify.mjs --jwks URL --issuer ISS [--audience AUD] TOKEN
//
// Prints {"payload": ..., "protectedHeader": ...} and exits 0, or prints
// {"error": {"code", "name", "message"}} and exits 1 (2 for a usage error).

import { parseArgs } from "node:util";
import { createRemoteJWKSet, jwtVerify } from "jose";

function fail(status, error) {
  process.stdout.write(
    JSON.stringify({ error: { code: error.code ?? null, name: error.name, message: error.message } }) + "\n",
  );
  process.exit(status);
}

let args;
try {
  args = parseArgs({
    options: {
      jwks: { type: "string" },
      issuer: { type: "string" },
      audience: { type: "string" },
    },
    allowPositionals: true,
  });
} catch (error) {
  fail(2, error);
}
const { values, positionals } = args;
if (!values.jwks || !values.issuer || positionals.length !== 1) {
  fail(2, new Error("usage: jose_verify.mjs --jwks URL --issuer ISS [--audience AUD] TOKEN"));
}

const JWKS = createRemoteJWKSet(new URL(values.jwks), { timeoutDuration: 10000 });
const options = { issuer: values.issuer };
if (values.audience) {
  options.audience = values.audience;
}

try {
  const { payload, protectedHeader } = await jwtVerify(positionals[0], JWKS, options);
  process.stdout.write(JSON.stringify({ payload, protectedHeader }) + "\n");
} catch (error) {
  fail(1, error);
}
