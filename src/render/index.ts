/**
 * The Handlebars environment. Templates live in `templates/<service>/<name>.hbs`, found from this
 * module's location so they work from `src/` (tests) and `dist/` (the built CLI) alike.
 *
 * `noEscape`: config files are not HTML. `strict`: a misspelt variable is an error, never an
 * empty string. Safety does not come from escaping but from the schema: every value that reaches
 * a template is a validated domain, address, e-mail, CIDR, number or a string we built ourselves.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type HandlebarsNs from 'handlebars';

export const TEMPLATES_DIR = fileURLToPath(new URL('../../templates/', import.meta.url));

type Template = HandlebarsNs.TemplateDelegate;
let hb: typeof HandlebarsNs | undefined;
const cache = new Map<string, Template>();

async function handlebars(): Promise<typeof HandlebarsNs> {
  if (!hb) {
    const mod = await import('handlebars');
    const env = mod.default.create();
    env.registerHelper('eq', (a: unknown, b: unknown) => a === b);
    env.registerHelper('join', (items: unknown, sep: unknown) =>
      Array.isArray(items) ? items.join(typeof sep === 'string' ? sep : ', ') : '',
    );
    hb = env;
  }
  return hb;
}

/**
 * Render `templates/<service>/<name>.hbs` with `data`. Throws when the template reads a value that
 * `data` does not have.
 */
export async function render(service: string, name: string, data: object): Promise<string> {
  const key = `${service}/${name}`;
  let tpl = cache.get(key);
  if (!tpl) {
    const env = await handlebars();
    const source = readFileSync(`${TEMPLATES_DIR}${service}/${name}.hbs`, 'utf8');
    tpl = env.compile(source, { noEscape: true, strict: true });
    cache.set(key, tpl);
  }
  return tpl(data);
}
