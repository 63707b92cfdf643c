import { createServer, Server, Socket } from 'node:net';
import { ConsumerLagMonitor, partitionLag } from './consumer-lag';
import { createKafka, silentLogger } from './kafka';

describe('consumer lag arithmetic', () => {
  it('counts from the committed offset to the end offset, clamped to the retained range', () => {
    expect(partitionLag('7', '0', '12', true)).toMatchObject({ committed: 7, end: 12, lag: 5 });
    expect(partitionLag('12', '0', '12', true)).toMatchObject({ committed: 12, end: 12, lag: 0 });
    // Retention deleted messages below the commit's position: the group resumes at the oldest one.
    expect(partitionLag('3', '10', '15', true)).toMatchObject({ committed: 3, lag: 5 });
    // No commit yet: everything retained is still to read (the HR consumer starts from the beginning)...
    expect(partitionLag('-1', '4', '9', true)).toMatchObject({ committed: null, end: 9, lag: 5 });
    // ...or nothing, for a group that starts at the end.
    expect(partitionLag('-1', '4', '9', false)).toMatchObject({ committed: null, lag: 0 });
  });
});

describe('consumer lag against a broker that never answers', () => {
  let server: Server;
  let port: number;
  const sockets = new Set<Socket>();
  beforeEach(async () => {
    // Accepts connections and reads requests without ever answering: a hung broker.
    server = createServer((s) => {
      sockets.add(s);
      s.on('data', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterEach(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });

  it('gives up after its timeout instead of waiting for the broker, and closes promptly', async () => {
    const kafka = createKafka({ brokers: [`127.0.0.1:${port}`], clientId: 'lag-test' }, silentLogger, 0);
    const monitor = new ConsumerLagMonitor(kafka, { topic: 't', groupId: 'g', timeoutMs: 300 });
    for (let i = 0; i < 2; i++) {
      const t0 = Date.now();
      expect(await monitor.read()).toBeUndefined();
      expect(Date.now() - t0).toBeLessThan(1000);
    }
    // Closing does not wait for the request the broker never answers.
    const t0 = Date.now();
    await monitor.close();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await monitor.read()).toBeUndefined();
  });
});
