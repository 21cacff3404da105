/** A real-shaped ed25519 host key line (the harness's, public), for config and component tests. */
export const ED25519 =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJFcj1CHKyv3EJ4x/ZQgven+3J7fuKCh+EF0U2LZ+1UI";
