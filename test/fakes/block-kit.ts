/**
 * Checks of Block Kit payloads against Slack's documented limits, for the fake Slack Web API:
 * blocks (https://api.slack.com/reference/block-kit/blocks), block elements
 * (https://api.slack.com/reference/block-kit/block-elements) and composition objects
 * (https://api.slack.com/reference/block-kit/composition-objects). Slack refuses a payload that
 * breaks one with `invalid_blocks`; these checks say which rule and where.
 *
 * Only what Crossdock sends is understood: section, header, context, actions, divider and image
 * blocks, button and image elements, and text objects. rich_text blocks are accepted unchecked.
 * Anything else is reported, so the checks grow when the bot starts sending something new.
 */

/** Where Slack shows blocks; a message holds at most 50 blocks, a Home tab or modal 100. */
export type BlockKitSurface = 'message' | 'home' | 'modal';

const MAX_BLOCKS: Record<BlockKitSurface, number> = { message: 50, home: 100, modal: 100 };
const MAX_BLOCK_ID = 255;
const MAX_ACTION_ID = 255;
const MAX_TEXT_OBJECT = 3000;
const MAX_SECTION_FIELDS = 10;
const MAX_SECTION_FIELD = 2000;
const MAX_HEADER_TEXT = 150;
const MAX_CONTEXT_ELEMENTS = 10;
const MAX_ACTIONS_ELEMENTS = 25;
const MAX_BUTTON_TEXT = 75;
const MAX_BUTTON_VALUE = 2000;
const MAX_URL = 3000;
const MAX_ALT_TEXT = 2000;
const BUTTON_STYLES = new Set(['primary', 'danger']);

/** Slack truncates a message's top-level `text` beyond 40,000 characters (chat.postMessage docs). */
const MAX_MESSAGE_TEXT = 40_000;

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** State shared by the checks of one surface: its problems and the ids seen so far. */
interface Check {
  problems: string[];
  blockIds: Set<string>;
  actionIds: Set<string>;
}

/** A string field no longer than `max` characters; missing is fine unless `required`. */
function checkString(
  check: Check,
  path: string,
  value: unknown,
  max: number,
  required = false,
): value is string {
  if (value === undefined) {
    if (required) check.problems.push(`${path}: missing`);
    return false;
  }
  if (typeof value !== 'string') {
    check.problems.push(`${path}: not a string`);
    return false;
  }
  if (value.length > max) {
    check.problems.push(`${path}: ${value.length} characters, more than ${max}`);
  }
  return true;
}

/**
 * A text object (composition-objects#text): type plain_text or mrkdwn, non-empty text of at most
 * `max` characters; `emoji` only on plain_text, `verbatim` only on mrkdwn.
 */
function checkTextObject(
  check: Check,
  path: string,
  value: unknown,
  max: number,
  only?: 'plain_text',
): void {
  if (!isObject(value)) {
    check.problems.push(`${path}: not a text object`);
    return;
  }
  if (value.type !== 'plain_text' && value.type !== 'mrkdwn') {
    check.problems.push(`${path}.type: ${JSON.stringify(value.type)}, not plain_text or mrkdwn`);
    return;
  }
  if (only && value.type !== only) {
    check.problems.push(`${path}.type: ${value.type}, but only ${only} is allowed here`);
  }
  if (value.type === 'mrkdwn' && 'emoji' in value) {
    check.problems.push(`${path}.emoji: only allowed on plain_text`);
  }
  if (value.type === 'plain_text' && 'verbatim' in value) {
    check.problems.push(`${path}.verbatim: only allowed on mrkdwn`);
  }
  if (checkString(check, `${path}.text`, value.text, max, true) && value.text === '') {
    check.problems.push(`${path}.text: empty`);
  }
}

/** An id unique in `seen`, of at most `max` characters. */
function checkId(check: Check, path: string, value: unknown, max: number, seen: Set<string>) {
  if (!checkString(check, path, value, max)) return;
  if (seen.has(value)) check.problems.push(`${path}: ${JSON.stringify(value)} used twice`);
  seen.add(value);
}

/** A button element (block-elements#button). */
function checkButton(check: Check, path: string, button: Json): void {
  checkTextObject(check, `${path}.text`, button.text, MAX_BUTTON_TEXT, 'plain_text');
  checkId(check, `${path}.action_id`, button.action_id, MAX_ACTION_ID, check.actionIds);
  checkString(check, `${path}.value`, button.value, MAX_BUTTON_VALUE);
  checkString(check, `${path}.url`, button.url, MAX_URL);
  if (button.style !== undefined && !BUTTON_STYLES.has(button.style as string)) {
    check.problems.push(`${path}.style: ${JSON.stringify(button.style)}, not primary or danger`);
  }
}

/** An image element (block-elements#image): image_url and alt_text. */
function checkImageElement(check: Check, path: string, image: Json): void {
  checkString(check, `${path}.image_url`, image.image_url, MAX_URL, true);
  checkString(check, `${path}.alt_text`, image.alt_text, MAX_ALT_TEXT, true);
}

/** An element of an actions block or a section's accessory: a button or an image. */
function checkElement(check: Check, path: string, element: unknown, allowImage: boolean): void {
  if (!isObject(element)) {
    check.problems.push(`${path}: not an element object`);
  } else if (element.type === 'button') {
    checkButton(check, path, element);
  } else if (element.type === 'image' && allowImage) {
    checkImageElement(check, path, element);
  } else {
    check.problems.push(`${path}.type: ${JSON.stringify(element.type)} not allowed or not checked`);
  }
}

/** An array field of at most `max` items; returns the items, or [] after reporting a problem. */
function checkArray(check: Check, path: string, value: unknown, max: number, min = 1): unknown[] {
  if (!Array.isArray(value)) {
    check.problems.push(`${path}: not an array`);
    return [];
  }
  if (value.length < min) check.problems.push(`${path}: fewer than ${min} items`);
  if (value.length > max) check.problems.push(`${path}: ${value.length} items, more than ${max}`);
  return value;
}

function checkBlock(check: Check, path: string, block: unknown): void {
  if (!isObject(block)) {
    check.problems.push(`${path}: not a block object`);
    return;
  }
  checkId(check, `${path}.block_id`, block.block_id, MAX_BLOCK_ID, check.blockIds);
  switch (block.type) {
    case 'section': {
      if (block.text === undefined && block.fields === undefined) {
        check.problems.push(`${path}: a section needs text or fields`);
      }
      if (block.text !== undefined) {
        checkTextObject(check, `${path}.text`, block.text, MAX_TEXT_OBJECT);
      }
      if (block.fields !== undefined) {
        checkArray(check, `${path}.fields`, block.fields, MAX_SECTION_FIELDS).forEach(
          (field, index) =>
            checkTextObject(check, `${path}.fields[${index}]`, field, MAX_SECTION_FIELD),
        );
      }
      if (block.accessory !== undefined) {
        checkElement(check, `${path}.accessory`, block.accessory, true);
      }
      return;
    }
    case 'header':
      checkTextObject(check, `${path}.text`, block.text, MAX_HEADER_TEXT, 'plain_text');
      return;
    case 'context':
      checkArray(check, `${path}.elements`, block.elements, MAX_CONTEXT_ELEMENTS).forEach(
        (element, index) => {
          const elementPath = `${path}.elements[${index}]`;
          if (isObject(element) && element.type === 'image') {
            checkImageElement(check, elementPath, element);
          } else {
            checkTextObject(check, elementPath, element, MAX_TEXT_OBJECT);
          }
        },
      );
      return;
    case 'actions':
      checkArray(check, `${path}.elements`, block.elements, MAX_ACTIONS_ELEMENTS).forEach(
        (element, index) => checkElement(check, `${path}.elements[${index}]`, element, false),
      );
      return;
    case 'image':
      checkImageElement(check, path, block);
      if (block.title !== undefined) {
        checkTextObject(check, `${path}.title`, block.title, 2000, 'plain_text');
      }
      return;
    case 'divider':
    case 'rich_text':
      return;
    default:
      check.problems.push(`${path}.type: unknown block type ${JSON.stringify(block.type)}`);
  }
}

/**
 * Checks `blocks` for `surface` against Slack's Block Kit limits: at most 50 blocks in a message
 * and 100 in a Home tab or modal; block_ids of at most 255 characters, unique; sections with text
 * (at most 3000 characters) or fields (at most 10, each at most 2000); headers of plain_text of at
 * most 150; context blocks of at most 10 elements; actions blocks of at most 25; buttons with a
 * plain_text label of at most 75 characters, an action_id of at most 255, value of at most 2000,
 * url of at most 3000 and style primary or danger; text objects plain_text or mrkdwn, not empty.
 *
 * Stricter than Slack in one point: action_ids must be unique on the whole surface (Slack asks it
 * within a block), so that a Bolt `app.action(id)` listener can tell its buttons apart.
 *
 * @returns human-readable problems such as `blocks[2].text.text: 3001 characters, more than 3000`;
 *   empty when the blocks are valid.
 */
export function checkBlockKit(surface: BlockKitSurface, blocks: unknown[]): string[] {
  const check: Check = { problems: [], blockIds: new Set(), actionIds: new Set() };
  if (!Array.isArray(blocks)) return ['blocks: not an array'];
  if (blocks.length > MAX_BLOCKS[surface]) {
    check.problems.push(
      `blocks: ${blocks.length} blocks, more than ${MAX_BLOCKS[surface]} in a ${surface}`,
    );
  }
  blocks.forEach((block, index) => checkBlock(check, `blocks[${index}]`, block));
  return check.problems;
}

/**
 * Checks a message's top-level `text` (the notification fallback of its blocks): a string of at
 * most 40,000 characters, beyond which Slack truncates it (api.slack.com/methods/chat.postMessage).
 *
 * @returns human-readable problems; empty when the text is valid.
 */
export function checkMessageText(text: unknown): string[] {
  if (typeof text !== 'string') return [`text: ${text === undefined ? 'missing' : 'not a string'}`];
  if (text.length > MAX_MESSAGE_TEXT) {
    return [`text: ${text.length} characters, more than ${MAX_MESSAGE_TEXT} (Slack truncates it)`];
  }
  return [];
}
