<?php
/**
 * WP-CLI: `wp alttext backfill [--dry-run] [--limit=<n>] [--overwrite-human] [--restart]`.
 *
 * @package Alttext
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Describes media-library images through the alttext service.
 */
class Alttext_CLI_Command {

	/**
	 * Fills missing alt text and checks unchecked alt through the batch endpoint; resumable.
	 *
	 * ## OPTIONS
	 *
	 * [--dry-run]
	 * : Ask the service and print what would change; save nothing.
	 *
	 * [--limit=<n>]
	 * : Process at most this many images (default: all).
	 *
	 * [--overwrite-human]
	 * : Replace human alt that fails the quality rules with the service's proposal.
	 *
	 * [--restart]
	 * : Forget where the last run stopped and start from the first image.
	 *
	 * ## EXAMPLES
	 *
	 *     wp alttext backfill --dry-run --limit=20
	 *     wp alttext backfill
	 *
	 * @param array $args       Positional arguments (none).
	 * @param array $assoc_args Flags.
	 */
	public function backfill( $args, $assoc_args ) {
		if ( ! empty( $assoc_args['restart'] ) ) {
			delete_option( Alttext_Backfill::CURSOR );
		}
		$dry    = ! empty( $assoc_args['dry-run'] );
		$counts = Alttext_Backfill::run(
			array(
				'limit'           => isset( $assoc_args['limit'] ) ? absint( $assoc_args['limit'] ) : 0,
				'dry_run'         => $dry,
				'overwrite_human' => ! empty( $assoc_args['overwrite-human'] ),
				'report'          => function ( $id, $status, $text ) use ( $dry ) {
					WP_CLI::log( sprintf( '%d	%s%s	%s', $id, $dry ? 'would be ' : '', $status, $text ) );
				},
			)
		);
		if ( is_wp_error( $counts ) ) {
			WP_CLI::error( $counts->get_error_message() . ' Run the command again to resume.' );
			return;
		}
		$summary = sprintf( 'filled %d, proposed %d, kept %d, failed %d', $counts['filled'], $counts['proposed'], $counts['kept'], $counts['failed'] );
		WP_CLI::success( ( $dry ? 'Dry run: ' : '' ) . $summary . ( $counts['finished'] ? '; every image checked.' : '; run again to continue.' ) );
	}
}
