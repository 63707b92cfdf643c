import { ManualClock } from '@idlc/domain';
import { EventStoreDbEventStore } from '@idlc/event-store';
import { serviceEnv } from '../support/services';
import { eventStoreContract } from './event-store.contract';

/*
 * The shared contract against a real EventStoreDB / KurrentDB, only where EVENTSTORE_URL points at one
 * (e.g. esdb://127.0.0.1:2113?tls=false). No machine here can run a server, so it is optional even
 * with REQUIRE_SERVICES=1. The server cannot be wiped between runs: the contract uses fresh stream ids
 * per test, and each run here uses its own stream prefix on top, so repeated runs never meet.
 * Server settings the contract needs: version 22.6 or later (positions on stream reads), and
 * EVENTSTORE_MAX_APPEND_SIZE above 1 MiB for the 1 MiB payload case (docker-compose.yml sets 4 MiB).
 */
const url = serviceEnv('EventStoreDB', 'EVENTSTORE_URL', { optionalInCi: true });

(url ? describe : describe.skip)('eventstoredb event store', () => {
  const run = `ct${Date.now().toString(36)}-`;

  eventStoreContract('eventstoredb', async () => {
    const clock = new ManualClock();
    const store = await EventStoreDbEventStore.connect(url!, clock, { streamPrefix: run });
    return { store, clock, cleanup: () => store.close() };
  });
});
