// The one duration grammar (openapi/shared/duration.ts): the spec's timeouts, global configs, the server and the SDK.
import t from 'tap';
import { formatDuration, parseDuration } from '@zstack-ts/openapi/duration';
import { parseDuration as serverParse } from '../../server/src/core/duration.js';

t.test('every unit, bare milliseconds, spaces and case', async (t) => {
  const cases: Array<[string, number]> = [
    ['1500', 1500],
    ['250ms', 250],
    ['5s', 5_000],
    ['30m', 1_800_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1w', 604_800_000],
    ['1y', 31_536_000_000],
    [' 10 S ', 10_000],
    ['3MS', 3],
    ['0', 0],
  ];
  for (const [text, ms] of cases) t.equal(parseDuration(text), ms, JSON.stringify(text));
});

t.test('anything else is not a duration', async (t) => {
  for (const text of ['', ' ', '-5s', '1.5h', '1h30m', '5 minutes', 'm', '5x', '1e3', '0x10', '99999999999999999999']) {
    t.equal(parseDuration(text), undefined, JSON.stringify(text));
  }
});

t.test('formatDuration writes what parseDuration reads back', async (t) => {
  for (const ms of [0, 1, 999, 1000, 90_000, 3_600_000, 86_400_000, 90_061_000]) t.equal(parseDuration(formatDuration(ms)), ms, String(ms));
  t.equal(formatDuration(1_800_000), '30m');
  t.equal(formatDuration(1500), '1500');
});

t.test('the server reads durations with the same parser', async (t) => {
  t.equal(serverParse, parseDuration);
});
