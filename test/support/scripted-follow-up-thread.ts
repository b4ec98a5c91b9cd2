// A stand-in for bot/slack/follow-up-thread.ts that follows a script, for tests of the
// acknowledging thread's side (startSlackFollowUp). It counts its starts in the file
// `<gitCacheDir>/starts`. `gitCacheDir` ending in `fail` makes every start fail before it is
// ready; otherwise the first start exits (code 1) at its first task, like a crash, and later
// starts answer each task with `done <kind>`.
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FollowUpInit, FromFollowUp, ToFollowUp } from '../../bot/slack/follow-up';
import { threadData } from '../../core/threads';

const { data: init, port } = threadData<FollowUpInit>();
const send = (message: FromFollowUp) => port.postMessage(message);
if (init.gitCacheDir.endsWith('fail')) throw new Error('this thread fails to start');
const startsFile = join(init.gitCacheDir, 'starts');
appendFileSync(startsFile, 'x');
const start = readFileSync(startsFile, 'utf8').length;

port.on('message', (message: ToFollowUp) => {
  if (message.type === 'stop') {
    send({ type: 'stopped' });
    port.close();
  } else if (start === 1) process.exit(1);
  else
    send({
      type: 'done',
      id: message.id,
      reply: { text: `done ${message.task.kind}`, blocks: [] },
    });
});
send({ type: 'ready' });
