import { describe, expect, it } from 'vitest';
import { checkBlockKit, checkMessageText } from './block-kit';

const mrkdwn = (text: string) => ({ type: 'mrkdwn', text });
const plain = (text: string) => ({ type: 'plain_text', text, emoji: true });
const button = (actionId: string, extra: Record<string, unknown> = {}) => ({
  type: 'button',
  text: plain('Retry'),
  action_id: actionId,
  value: '42',
  ...extra,
});
const section = (text: string) => ({ type: 'section', text: mrkdwn(text) });
const x = (count: number) => 'x'.repeat(count);

/** Sets the field at `path` (e.g. "[2].fields[9].text") of `root` to `value`; undefined deletes. */
function setPath(root: unknown, path: string, value: unknown): void {
  const keys = path.split(/[.[\]]+/).filter(Boolean);
  const last = keys.pop()!;
  let target = root as Record<string, unknown>;
  for (const key of keys) target = target[key] as Record<string, unknown>;
  if (value === undefined) delete target[last];
  else target[last] = value;
}

/** A message using every block Crossdock sends, each field at its limit. */
const validMessage = () => [
  { type: 'header', block_id: 'head', text: plain(x(150)) },
  { type: 'section', block_id: x(255), text: mrkdwn(x(3000)), accessory: button(x(255)) },
  { type: 'section', fields: Array.from({ length: 10 }, () => mrkdwn(x(2000))) },
  { type: 'divider' },
  {
    type: 'context',
    elements: [
      mrkdwn(x(3000)),
      { type: 'image', image_url: 'https://example.com/a.png', alt_text: 'logo' },
      ...Array.from({ length: 8 }, () => plain('·')),
    ],
  },
  {
    type: 'actions',
    elements: Array.from({ length: 25 }, (_, index) =>
      button(`retry-${index}`, {
        style: index === 0 ? 'primary' : 'danger',
        text: plain(x(75)),
        value: x(2000),
        url: `https://example.com/${x(2980)}`,
      }),
    ),
  },
  { type: 'rich_text', elements: [{ type: 'rich_text_section', elements: [] }] },
  { type: 'image', image_url: 'https://example.com/b.png', alt_text: 'chart' },
  ...Array.from({ length: 42 }, (_, index) => section(`line ${index}`)),
];

describe('checkBlockKit', () => {
  it('passes a message of 50 blocks with every field at its limit', () => {
    expect(validMessage()).toHaveLength(50);
    expect(checkBlockKit('message', validMessage())).toEqual([]);
  });

  it('allows 100 blocks on a Home tab and in a modal, not 101', () => {
    const blocks = Array.from({ length: 100 }, (_, index) => section(`line ${index}`));
    expect(checkBlockKit('home', blocks)).toEqual([]);
    expect(checkBlockKit('modal', blocks)).toEqual([]);
    expect(checkBlockKit('home', [...blocks, section('one more')])).toEqual([
      'blocks: 101 blocks, more than 100 in a home',
    ]);
  });

  // Each row sets one field of the valid message (path from its blocks array) to break one limit.
  it.each<[string, string, unknown, string]>([
    [
      'a 51st block in a message',
      '[50]',
      section('one more'),
      'blocks: 51 blocks, more than 50 in a message',
    ],
    [
      'a block_id of 256 characters',
      '[1].block_id',
      x(256),
      'blocks[1].block_id: 256 characters, more than 255',
    ],
    ['a block_id used twice', '[3].block_id', 'head', 'blocks[3].block_id: "head" used twice'],
    [
      'section text of 3001 characters',
      '[1].text.text',
      x(3001),
      'blocks[1].text.text: 3001 characters, more than 3000',
    ],
    [
      'a section of 11 fields',
      '[2].fields[10]',
      mrkdwn('eleven'),
      'blocks[2].fields: 11 items, more than 10',
    ],
    [
      'a section field of 2001 characters',
      '[2].fields[9].text',
      x(2001),
      'blocks[2].fields[9].text: 2001 characters, more than 2000',
    ],
    [
      'a section with neither text nor fields',
      '[9].text',
      undefined,
      'blocks[9]: a section needs text or fields',
    ],
    [
      'a header of 151 characters',
      '[0].text.text',
      x(151),
      'blocks[0].text.text: 151 characters, more than 150',
    ],
    [
      'a header in mrkdwn',
      '[0].text',
      mrkdwn('Build'),
      'blocks[0].text.type: mrkdwn, but only plain_text is allowed here',
    ],
    [
      'a context of 11 elements',
      '[4].elements[10]',
      plain('eleven'),
      'blocks[4].elements: 11 items, more than 10',
    ],
    [
      'context text of 3001 characters',
      '[4].elements[0].text',
      x(3001),
      'blocks[4].elements[0].text: 3001 characters, more than 3000',
    ],
    [
      'an actions block of 26 elements',
      '[5].elements[25]',
      button('twenty-six'),
      'blocks[5].elements: 26 items, more than 25',
    ],
    [
      'a button label of 76 characters',
      '[5].elements[3].text.text',
      x(76),
      'blocks[5].elements[3].text.text: 76 characters, more than 75',
    ],
    [
      'a button label in mrkdwn',
      '[1].accessory.text',
      mrkdwn('Retry'),
      'blocks[1].accessory.text.type: mrkdwn, but only plain_text is allowed here',
    ],
    [
      'an action_id of 256 characters',
      '[1].accessory.action_id',
      x(256),
      'blocks[1].accessory.action_id: 256 characters, more than 255',
    ],
    [
      'an action_id used twice on the surface',
      '[5].elements[24].action_id',
      x(255),
      `blocks[5].elements[24].action_id: "${x(255)}" used twice`,
    ],
    [
      'a button value of 2001 characters',
      '[5].elements[0].value',
      x(2001),
      'blocks[5].elements[0].value: 2001 characters, more than 2000',
    ],
    [
      'a button url of 3001 characters',
      '[5].elements[0].url',
      x(3001),
      'blocks[5].elements[0].url: 3001 characters, more than 3000',
    ],
    [
      'a button style other than primary or danger',
      '[5].elements[0].style',
      'secondary',
      'blocks[5].elements[0].style: "secondary", not primary or danger',
    ],
    [
      'a text object of another type',
      '[9].text.type',
      'markdown',
      'blocks[9].text.type: "markdown", not plain_text or mrkdwn',
    ],
    ['an empty text object', '[9].text.text', '', 'blocks[9].text.text: empty'],
    ['a text object without text', '[9].text.text', undefined, 'blocks[9].text.text: missing'],
    ['emoji on mrkdwn', '[9].text.emoji', true, 'blocks[9].text.emoji: only allowed on plain_text'],
    [
      'an unknown block type',
      '[3]',
      { type: 'carousel' },
      'blocks[3].type: unknown block type "carousel"',
    ],
    [
      'an element the checks do not know',
      '[5].elements[0]',
      { type: 'static_select', action_id: 'pick' },
      'blocks[5].elements[0].type: "static_select" not allowed or not checked',
    ],
    ['an image without alt_text', '[7].alt_text', undefined, 'blocks[7].alt_text: missing'],
  ])('reports %s', (_name, path, value, problem) => {
    const blocks = validMessage();
    setPath(blocks, path, value);
    expect(checkBlockKit('message', blocks)).toEqual([problem]);
  });
});

describe('checkMessageText', () => {
  it.each<[string, unknown, string[]]>([
    ['a short text', 'Build #1 succeeded', []],
    ['40,000 characters', x(40_000), []],
    [
      '40,001 characters',
      x(40_001),
      ['text: 40001 characters, more than 40000 (Slack truncates it)'],
    ],
    ['no text', undefined, ['text: missing']],
    ['a number', 42, ['text: not a string']],
  ])('%s', (_name, text, problems) => {
    expect(checkMessageText(text)).toEqual(problems);
  });
});
