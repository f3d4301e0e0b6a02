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
type Env = Pick<typeof HandlebarsNs, 'registerHelper' | 'template'> & Partial<Pick<typeof HandlebarsNs, 'compile'>>;
type Specs = Record<string, Parameters<typeof HandlebarsNs.template>[0]>;

let env: Promise<{ env: Env; specs: Specs | undefined }> | undefined;
const cache = new Map<string, Template>();

/**
 * The built CLI ships every template precompiled (scripts/precompile-templates.mjs) and needs
 * only Handlebars' runtime; from the sources (tests), templates are compiled on first use.
 */
function environment(): Promise<{ env: Env; specs: Specs | undefined }> {
  env ??= (async () => {
    let specs: Specs | undefined;
    try {
      const mod = (await import(new URL('../render/templates.precompiled.js', import.meta.url).href)) as { specs: Specs };
      specs = mod.specs;
    } catch (err) {
      // Only its absence means "the sources, not a build": any other failure is a broken build.
      if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
      specs = undefined;
    }
    const base = specs
      ? ((await import('handlebars/runtime.js')) as unknown as { default: typeof HandlebarsNs }).default
      : (await import('handlebars')).default;
    const e = base.create() as Env;
    e.registerHelper('eq', (a: unknown, b: unknown) => a === b);
    e.registerHelper('join', (items: unknown, sep: unknown) =>
      Array.isArray(items) ? items.join(typeof sep === 'string' ? sep : ', ') : '',
    );
    return { env: e, specs };
  })();
  return env;
}

/**
 * Render `templates/<service>/<name>.hbs` with `data`. Throws when the template reads a value that
 * `data` does not have.
 */
export async function render(service: string, name: string, data: object): Promise<string> {
  const key = `${service}/${name}`;
  let tpl = cache.get(key);
  if (!tpl) {
    const { env: e, specs } = await environment();
    const spec = specs?.[key];
    if (spec) tpl = e.template(spec);
    else if (e.compile) tpl = e.compile(readFileSync(`${TEMPLATES_DIR}${service}/${name}.hbs`, 'utf8'), { noEscape: true, strict: true });
    else throw new Error(`template ${key} is not in the precompiled set; rebuild (npm run build)`);
    cache.set(key, tpl);
  }
  return tpl(data);
}
