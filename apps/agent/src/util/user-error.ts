/** An error the user caused or can fix; its message is shown as it is. */
export class UserError extends Error {}
