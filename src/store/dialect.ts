/** The two storage backends. */
export type Dialect = 'sqlite' | 'postgres';
