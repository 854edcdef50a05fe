// A real OpenID Connect provider for the tests: panva's oidc-provider (the certified Node
// implementation), on 127.0.0.1, with its development login and consent pages.
//
//   node tests/support/oidc_provider.mjs '{"port": N, "clients": [{client_id, client_secret, redirect_uris}]}'
//
// Prints "ready <issuer>" once it listens; stops on SIGTERM.
//
// Accounts: any login name signs in. The account's `sub` is the login, its `email` the login
// when it looks like an address, and `email_verified` is false when the login starts with
// "unverified" (true otherwise).
//
// Misbehaving providers, for the negative tests: `/variant/<name>/.well-known/openid-configuration`
// is this provider's discovery document with the token endpoint replaced by
// `/variant/<name>/token`, which performs the real code exchange (client authentication,
// PKCE, single-use code — all by oidc-provider) and then changes the ID token the way a
// broken or malicious provider would, re-signing it with this provider's real key (so only
// the claim checks can catch it):
//   foreign_iss  iss of another issuer          foreign_aud  aud of another client
//   expired      exp an hour ago                 bad_signature  signed by a key not in the JWKS
//   alg_none     unsigned ("alg": "none")

import http from "node:http";
import { generateKeyPair, exportJWK, SignJWT, decodeJwt, UnsecuredJWT } from "jose";
import Provider from "oidc-provider";

const config = JSON.parse(process.argv[2]);
const issuer = `http://127.0.0.1:${config.port}`;

const { privateKey } = await generateKeyPair("RS256", { extractable: true });
const signingJwk = { ...(await exportJWK(privateKey)), kid: "test-key-1", alg: "RS256", use: "sig" };
const { privateKey: strangerKey } = await generateKeyPair("RS256", { extractable: true });

const provider = new Provider(issuer, {
  clients: config.clients.map((client) => ({
    client_id: client.client_id,
    client_secret: client.client_secret,
    redirect_uris: client.redirect_uris,
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
  })),
  jwks: { keys: [signingJwk] },
  cookies: { keys: ["trikchi-tests-cookie-key-0123456789"] },
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
  // Put the requested claims in the ID token too (as Google does), not only in userinfo.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          ...(id.includes("@") ? { email: id, email_verified: !id.startsWith("unverified") } : {}),
          name: `Test ${id.split("@")[0]}`,
        };
      },
    };
  },
});
provider.on("server_error", (_ctx, error) => process.stderr.write(`server_error ${error.stack}\n`));
const handle = provider.callback();

const MUTATIONS = {
  foreign_iss: (claims) => ({ ...claims, iss: "http://127.0.0.1:1" }),
  foreign_aud: (claims) => ({ ...claims, aud: "someone-else" }),
  expired: (claims) => ({ ...claims, iat: claims.iat - 7200, exp: claims.iat - 3600 }),
  bad_signature: (claims) => claims,
  alg_none: (claims) => claims,
};

async function resign(variant, idToken) {
  const claims = MUTATIONS[variant](decodeJwt(idToken));
  if (variant === "alg_none") return new UnsecuredJWT(claims).encode();
  const key = variant === "bad_signature" ? strangerKey : privateKey;
  return new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: signingJwk.kid, typ: "JWT" }).sign(key);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

async function variant(req, res, name, rest) {
  if (!(name in MUTATIONS)) {
    res.writeHead(404).end();
    return;
  }
  if (rest === "/.well-known/openid-configuration") {
    const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
    discovery.token_endpoint = `${issuer}/variant/${name}/token`;
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(discovery));
    return;
  }
  if (rest === "/token" && req.method === "POST") {
    const upstream = await fetch(`${issuer}/token`, {
      method: "POST",
      headers: {
        "content-type": req.headers["content-type"] || "application/x-www-form-urlencoded",
        ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      },
      body: await readBody(req),
    });
    const body = await upstream.json();
    if (upstream.ok && body.id_token) body.id_token = await resign(name, body.id_token);
    res.writeHead(upstream.status, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify(body));
    return;
  }
  res.writeHead(404).end();
}

const server = http.createServer((req, res) => {
  const match = /^\/variant\/([a-z_]+)(\/.*)$/.exec(req.url.split("?")[0]);
  if (match) {
    variant(req, res, match[1], match[2]).catch((error) => {
      process.stderr.write(`variant error ${error.stack}\n`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
    return;
  }
  handle(req, res);
});

server.listen(config.port, "127.0.0.1", () => process.stdout.write(`ready ${issuer}\n`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
