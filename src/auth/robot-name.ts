/** What a robot may be called (after the `robot$` prefix): the CLI and the console's API check the same. */
export const ROBOT_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/
