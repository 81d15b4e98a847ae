import { KrtError } from '../lib/errors';

/** A route, next hop or attribute that cannot exist (bad weight, onlink without a device...). */
export class RouteError extends KrtError {
  constructor(message: string) {
    super('KRT_ERR_ROUTE', message);
  }
}
