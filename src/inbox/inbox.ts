/**
 * The supervisor's one port. Every start, module result, callback, external event, user
 * action, operator command and timer reaches the supervisor as an `InboxMessage` through
 * an `Inbox`; nothing else calls it. Chosen once, where the engine is composed
 * (`src/engine.ts`): in-process here, over Redis in `redis-inbox.ts`.
 */
import type { Bus } from '../bus/bus';
import type { RequestRecord } from '../model';
import type { HandleResult, InboxMessage, StepResult } from '../supervisor/messages';
import { resultMessage } from '../supervisor/messages';
import type { Supervisor } from '../supervisor/supervisor';

export type { HandleResult, InboxMessage, StepResult } from '../supervisor/messages';

export interface Inbox {
  /**
   * Decided by this process, which awaits the reply on the same path: an action, an event,
   * an operator's resume or stop (`committed`, or `ignored` when it does not apply).
   */
  ask(message: InboxMessage): Promise<HandleResult>;
  /**
   * Handed to whichever engine process will commit it: a start, a module's late answer (a
   * callback). Resolves `true` once taken (in distributed mode, durably queued); `false` when
   * it could not be, and the sender should try again.
   */
  post(message: InboxMessage): Promise<boolean>;
  /**
   * A new request intake has not stored yet, started in the transaction that stores it when
   * this process would start it at once anyway (`src/supervisor/start-new.ts`). Resolves
   * with the request as stored (`running`, `rev` 1), or `undefined` when it is not started:
   * intake then stores it `buffered` and posts a start. Rejects when the write failed;
   * nothing is stored then.
   */
  startNew(record: RequestRecord): Promise<RequestRecord | undefined>;
  /** Starts feeding the supervisor: this process's bus (and, distributed, the Redis queues). */
  start(): void;
  /** Stops listening (distributed: once what is being taken from the queues is taken). */
  stop(): void | Promise<void>;
}

/** One process: everything goes straight to its supervisor. */
export class LocalInbox implements Inbox {
  private readonly offs: Array<() => void> = [];
  private listening = false;

  constructor(
    protected readonly supervisor: Pick<Supervisor, 'receive'> & Partial<Pick<Supervisor, 'startNew'>>,
    protected readonly bus: Bus,
  ) {}

  startNew(record: RequestRecord): Promise<RequestRecord | undefined> {
    // Before the engine runs a request is left buffered, as a start would be.
    return this.listening && this.supervisor.startNew ? this.supervisor.startNew(record) : Promise.resolve(undefined);
  }

  ask(message: InboxMessage): Promise<HandleResult> {
    return this.supervisor.receive(message);
  }

  async post(message: InboxMessage): Promise<boolean> {
    // A start before the engine runs is left buffered: intake releases it once it does.
    if (message.type === 'start' && !this.listening) return false;
    return (await this.supervisor.receive(message)) !== 'failed';
  }

  /** Module results and `202`s arrive on the bus (event and HTTP transports). */
  start(): void {
    this.listening = true;
    const take = (result: StepResult): void => {
      this.bus.emit('StepAnswered', result);
      void this.supervisor.receive(resultMessage(result));
    };
    this.offs.push(
      this.bus.on('StepCompleted', take),
      this.bus.on('StepFailed', take),
      this.bus.on('StepAccepted', (accepted) => void this.supervisor.receive({ type: 'accepted', requestId: accepted.requestId, accepted })),
    );
  }

  stop(): void | Promise<void> {
    this.listening = false;
    for (const off of this.offs.splice(0)) off();
  }
}
