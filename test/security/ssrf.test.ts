import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamRequestError } from '../../providers/types.ts';
import { createUpstreamFetch, isPrivateAddress } from '../../src/federation/upstream-fetch.ts';

describe('the SSRF guard judges IPv6 forms that embed an IPv4 address by that address', () => {
  it.each([
    '::7f00:1', // IPv4-compatible, hex
    '::a9fe:a9fe', // IPv4-compatible 169.254.169.254
    '64:ff9b::7f00:1', // NAT64 well-known prefix
    '64:ff9b::127.0.0.1',
    '64:ff9b::a00:1', // NAT64 to 10.0.0.1
    '::ffff:0:7f00:1', // IPv4-translated
    '::ffff:0:127.0.0.1',
    '2002:7f00:1::', // 6to4 of 127.0.0.1
    '0:0:0:0:0:ffff:7f00:1', // mapped, written in full
  ])('refuses %s', (address) => {
    expect(isPrivateAddress(address)).toBe(true);
  });

  it.each(['64:ff9b::808:808', '::ffff:0:808:808', '2002:808:808::', '2001:4860:4860::8888'])('allows %s, which reaches a public host', (address) => {
    expect(isPrivateAddress(address)).toBe(false);
  });
});

describe('the SSRF guard checks the address the socket connects to', () => {
  let target: http.Server;
  let port: number;
  let requests = 0;

  beforeAll(async () => {
    target = http.createServer((_req, res) => {
      requests++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"internal":true}');
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    port = (target.address() as AddressInfo).port;
  });

  afterAll(async () => {
    target.closeAllConnections();
    await new Promise((resolve) => target.close(resolve));
  });

  it('refuses at connect time a name that answered public for the check and private for the connection (DNS rebinding)', async () => {
    // `localhost` is only a name here: the injected resolver decides what it resolves to. The
    // first answer (the early check) is public, every later one (the socket's lookup) is loopback.
    const answers: string[][] = [];
    const rebinding = async (hostname: string) => {
      const answer = answers.length === 0 ? ['203.0.113.9'] : ['127.0.0.1'];
      answers.push(answer);
      expect(hostname).toBe('localhost');
      return answer;
    };
    const guarded = createUpstreamFetch({ allowPrivateNetwork: false, timeoutMs: 5000, resolve: rebinding });
    const error = await guarded(`http://localhost:${port}/.well-known/openid-configuration`).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamRequestError);
    expect((error as UpstreamRequestError).reason).toBe('blocked');
    expect((error as UpstreamRequestError).message).toMatch(/127\.0\.0\.1/);
    expect(answers).toEqual([['203.0.113.9'], ['127.0.0.1']]);
    expect(requests).toBe(0);
  });

  it('connects when every answer at connect time is allowed, through the same lookup', async () => {
    // With private networks allowed nothing is refused; this shows the guarded Agent still speaks HTTP.
    const open = createUpstreamFetch({ allowPrivateNetwork: true, timeoutMs: 5000 });
    const before = requests;
    const res = await open(`http://localhost:${port}/`);
    expect(await res.json()).toEqual({ internal: true });
    expect(requests).toBe(before + 1);
  });
});
