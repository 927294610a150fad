<?php
/**
 * Media-library backfill through POST /v1/alt-text:batch, shared by WP-CLI and the admin screen.
 *
 * @package Alttext
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Walks image attachments in ID order from a saved cursor (`alttext_backfill_cursor`), so a run that
 * stops (crash, timeout, service down) resumes where it stopped. Candidates are images whose alt is
 * missing, and images whose alt the service has not checked yet (it flags poor human alt and offers a
 * proposal; human alt is only replaced with `overwrite_human`).
 */
class Alttext_Backfill {

	const CURSOR     = 'alttext_backfill_cursor';
	const CRON_HOOK  = 'alttext_backfill_continue';
	const BATCH_SIZE = 8;

	/**
	 * Hooks.
	 */
	public static function init() {
		add_action( self::CRON_HOOK, array( __CLASS__, 'continue_in_background' ), 10, 1 );
	}

	/**
	 * The next candidates after the cursor.
	 *
	 * @param int $after Attachment ID to start after.
	 * @param int $count How many.
	 * @return int[]
	 */
	public static function candidates( $after, $count ) {
		global $wpdb;
		// phpcs:ignore WordPress.DB.DirectDatabaseQuery -- one indexed query per batch; the meta API cannot express "missing or empty".
		$ids = $wpdb->get_col(
			$wpdb->prepare(
				"SELECT p.ID FROM {$wpdb->posts} p
				LEFT JOIN {$wpdb->postmeta} alt ON alt.post_id = p.ID AND alt.meta_key = '_wp_attachment_image_alt'
				LEFT JOIN {$wpdb->postmeta} chk ON chk.post_id = p.ID AND chk.meta_key = '_alttext_checked'
				WHERE p.post_type = 'attachment' AND p.post_mime_type LIKE 'image/%%' AND p.ID > %d
				AND ( alt.meta_value IS NULL OR TRIM( alt.meta_value ) = '' OR chk.meta_value IS NULL )
				ORDER BY p.ID ASC LIMIT %d",
				$after,
				$count
			)
		);
		return array_map( 'intval', $ids );
	}

	/**
	 * Processes up to $limit candidates from the cursor.
	 *
	 * @param array $args {
	 *     @type int      $limit           Most attachments to process (0: all).
	 *     @type bool     $dry_run         Ask the service but store nothing and leave the cursor alone.
	 *     @type bool     $overwrite_human Replace human alt that fails the rules with the service's proposal.
	 *     @type callable $report          Called with (attachment ID, status, text) for each item.
	 * }
	 * @return array|WP_Error Counts (done, filled, proposed, kept, failed) and `finished`, or the error that stopped the run.
	 */
	public static function run( array $args ) {
		$args   = wp_parse_args(
			$args,
			array(
				'limit'           => 0,
				'dry_run'         => false,
				'overwrite_human' => false,
				'report'          => null,
			)
		);
		$client = Alttext_Client::from_settings();
		$cursor = (int) get_option( self::CURSOR, 0 );
		$counts = array(
			'done'     => 0,
			'filled'   => 0,
			'proposed' => 0,
			'kept'     => 0,
			'failed'   => 0,
			'finished' => false,
		);
		$limit  = (int) $args['limit'];
		while ( 0 === $limit || $counts['done'] < $limit ) {
			$size = 0 === $limit ? self::BATCH_SIZE : min( self::BATCH_SIZE, $limit - $counts['done'] );
			$ids  = self::candidates( $cursor, $size );
			if ( ! $ids ) {
				$counts['finished'] = true;
				if ( ! $args['dry_run'] ) {
					delete_option( self::CURSOR );
				}
				break;
			}
			$items = array();
			foreach ( $ids as $id ) {
				$item = self::batch_item( $id );
				if ( is_wp_error( $item ) ) {
					self::report( $args['report'], $id, 'failed', $item->get_error_message() );
					++$counts['failed'];
					continue;
				}
				$items[] = $item;
			}
			$results = $items ? $client->describe_batch( $items ) : array();
			if ( is_wp_error( $results ) ) {
				Alttext_Settings::record_error( $results, $ids[0] );
				return $results; // The cursor stays before this batch: the next run starts here.
			}
			foreach ( $results as $row ) {
				$id = isset( $row['id'] ) ? (int) $row['id'] : 0;
				if ( empty( $row['result'] ) ) {
					$message = isset( $row['error']['message'] ) ? $row['error']['message'] : 'error';
					$code    = isset( $row['error']['code'] ) ? $row['error']['code'] : 'error';
					if ( ! $args['dry_run'] ) {
						update_post_meta(
							$id,
							'_alttext_error',
							array(
								'code'    => $code,
								'message' => $message,
							)
						);
						update_post_meta( $id, '_alttext_checked', time() );
					}
					self::report( $args['report'], $id, 'failed', $code . ': ' . $message );
					++$counts['failed'];
					continue;
				}
				$status = self::outcome( $id, $row['result'], $args['overwrite_human'] );
				if ( ! $args['dry_run'] ) {
					Alttext_Attachments::apply( $id, $row['result'], $args['overwrite_human'] );
				}
				$text = 'kept' === $status ? (string) get_post_meta( $id, Alttext_Attachments::ALT_KEY, true ) : (string) ( empty( $row['result']['proposal'] ) ? $row['result']['alt'] : $row['result']['proposal'] );
				self::report( $args['report'], $id, $status, $text );
				++$counts[ $status ];
			}
			$counts['done'] += count( $ids );
			$cursor          = end( $ids );
			if ( ! $args['dry_run'] ) {
				update_option( self::CURSOR, $cursor, false );
			}
		}
		return $counts;
	}

	/**
	 * What apply() will do with an answer: filled, proposed or kept.
	 *
	 * @param int   $id              Attachment.
	 * @param array $result          AltResult.
	 * @param bool  $overwrite_human Overwrite flag.
	 * @return string
	 */
	private static function outcome( $id, array $result, $overwrite_human ) {
		$current = trim( (string) get_post_meta( $id, Alttext_Attachments::ALT_KEY, true ) );
		if ( '' === $current ) {
			return 'propose' === Alttext_Settings::get( 'mode' ) ? 'proposed' : 'filled';
		}
		if ( ! empty( $result['proposal'] ) ) {
			return $overwrite_human ? 'filled' : 'proposed';
		}
		return 'kept';
	}

	/**
	 * One BatchItem for an attachment: its image as base64 and its page fields.
	 *
	 * @param int $id Attachment.
	 * @return array|WP_Error
	 */
	private static function batch_item( $id ) {
		$path  = get_attached_file( $id );
		$bytes = $path && is_readable( $path ) ? file_get_contents( $path ) : false; // phpcs:ignore WordPress.WP.AlternativeFunctions.file_get_contents_file_get_contents -- local file.
		if ( false === $bytes ) {
			return new WP_Error( 'alttext_unreadable', __( 'The image file could not be read.', 'alttext' ) );
		}
		$fields = Alttext_Attachments::page_fields( $id );
		$item   = array(
			'id'              => (string) $id,
			'image_base64'    => base64_encode( $bytes ), // phpcs:ignore WordPress.PHP.DiscouragedPHPFunctions.obfuscation_base64_encode -- the API takes images as base64.
			'caption_visible' => true,
			'max_chars'       => (int) $fields['max_chars'],
			'lang'            => $fields['lang'],
		);
		foreach ( array( 'caption', 'context', 'existing_alt' ) as $name ) {
			if ( '' !== $fields[ $name ] ) {
				$item[ $name ] = $fields[ $name ];
			}
		}
		return $item;
	}

	/**
	 * Calls the report callback if there is one.
	 *
	 * @param callable|null $report Callback.
	 * @param int           $id     Attachment.
	 * @param string        $status Outcome.
	 * @param string        $text   Alt, proposal or error.
	 */
	private static function report( $report, $id, $status, $text ) {
		if ( is_callable( $report ) ) {
			call_user_func( $report, $id, $status, $text );
		}
	}

	/**
	 * WP-Cron: one slice of a backfill started from the admin screen; reschedules itself until done.
	 *
	 * @param bool $overwrite_human Overwrite flag chosen on the admin screen.
	 */
	public static function continue_in_background( $overwrite_human = false ) {
		$counts = self::run(
			array(
				'limit'           => 4 * self::BATCH_SIZE,
				'overwrite_human' => (bool) $overwrite_human,
			)
		);
		if ( is_wp_error( $counts ) ) {
			wp_schedule_single_event( time() + 5 * MINUTE_IN_SECONDS, self::CRON_HOOK, array( (bool) $overwrite_human ) );
		} elseif ( ! $counts['finished'] ) {
			wp_schedule_single_event( time() + 10, self::CRON_HOOK, array( (bool) $overwrite_human ) );
		}
	}
}
