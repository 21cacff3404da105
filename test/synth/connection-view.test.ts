import assert from "node:assert/strict";
import { test } from "node:test";
import { connectionView } from "../../src/synth/connection-view";

test("a connection shows host, port, user and host key, and masks its secrets", () => {
  assert.deepEqual(
    connectionView({
      host: "api.example.org",
      port: 22,
      user: "deploy",
      hostKey: "ssh-ed25519 AAAA",
      privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----",
      privateKeyPassword: "pp",
      dialErrorLimit: 5,
    }),
    {
      host: "api.example.org",
      port: 22,
      user: "deploy",
      hostKey: "ssh-ed25519 AAAA",
      privateKey: "[secret]",
      privateKeyPassword: "[secret]",
      dialErrorLimit: 5,
    },
  );
});

test("a bastion's password is masked too", () => {
  assert.deepEqual(connectionView({ host: "h", proxy: { host: "bastion", password: "pw" } }), {
    host: "h",
    proxy: { host: "bastion", password: "[secret]" },
  });
});

test("anything that is not an object passes through", () => {
  assert.equal(connectionView("[secret]"), "[secret]");
  assert.equal(connectionView(undefined), undefined);
});
