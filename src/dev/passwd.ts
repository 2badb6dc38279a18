/** The passwd database entry of an OS user (`getent passwd`, which also asks NSS, else /etc/passwd). */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** The seven fields of `user`'s passwd entry, or undefined when there is none (or it cannot be read). */
export function passwdEntry(user: string): string[] | undefined {
  const fieldsOf = (line: string | undefined): string[] | undefined => {
    const fields = line?.split(':');
    return fields !== undefined && fields.length >= 7 && fields[0] === user ? fields : undefined;
  };
  try {
    return fieldsOf(execFileSync('getent', ['passwd', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    try {
      return fieldsOf(
        readFileSync('/etc/passwd', 'utf8')
          .split('\n')
          .find((line) => line.startsWith(`${user}:`)),
      );
    } catch {
      return undefined;
    }
  }
}
