// Where the console lives on ferry's port.
export const API_PREFIX = '/_ferry/api/v1/'
export const UI_PREFIX = '/ui/'
