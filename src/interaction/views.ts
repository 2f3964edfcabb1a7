import path from 'node:path';
import nunjucks from 'nunjucks';
import { installDir } from '../install-dir.ts';

const builtInViews = path.join(installDir, 'views');

/** Renders page templates; an operator's directory, when set, overrides any built-in template. */
export interface Views {
  render(template: string, context: Record<string, unknown>): string;
}

/** Creates the nunjucks environment: autoescaped, operator templates first, then `views/`. */
export function createViews(options: { templatesDir: string | undefined; productName?: string }): Views {
  const searchPaths = options.templatesDir ? [options.templatesDir, builtInViews] : [builtInViews];
  const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(searchPaths, { noCache: false }), {
    autoescape: true,
    throwOnUndefined: false,
  });
  env.addGlobal('product_name', options.productName ?? 'Realmgate');
  return {
    render: (template, context) => env.render(template, context),
  };
}
