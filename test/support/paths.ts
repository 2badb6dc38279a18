/** Where tests find the repository, wherever under test/ they sit. */
import { fileURLToPath } from 'node:url';

/** The repository root (absolute, no trailing slash). */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
