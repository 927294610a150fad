<?php
/**
 * HTTP client for the alttext service (POST /v1/alt-text and /v1/alt-text:batch).
 *
 * @package Alttext
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Talks to the service with the WordPress HTTP API. Every failure comes back as a WP_Error whose
 * data says whether retrying can help ('retryable') and after how many seconds ('retry_after').
 */
class Alttext_Client {

	/**
	 * Service base URL, without a trailing slash.
	 *
	 * @var string
	 */
	private $base;

	/**
	 * API key, or an empty string when the service does not require one.
	 *
	 * @var string
	 */
	private $key;

	/**
	 * Request timeout in seconds.
	 *
	 * @var int
	 */
	private $timeout;

	/**
	 * Builds a client from the plugin's settings.
	 */
	public static function from_settings() {
		return new self( Alttext_Settings::get( 'service_url' ), Alttext_Settings::get( 'api_key' ), (int) Alttext_Settings::get( 'timeout' ) );
	}

	/**
	 * Constructor.
	 *
	 * @param string $base    Service base URL.
	 * @param string $key     API key.
	 * @param int    $timeout Timeout in seconds.
	 */
	public function __construct( $base, $key, $timeout = 15 ) {
		$this->base    = untrailingslashit( (string) $base );
		$this->key     = (string) $key;
		$this->timeout = max( 1, (int) $timeout );
	}

	/**
	 * Describes one image file (multipart upload, as in docs/cms-plugin-example.md).
	 *
	 * @param string $path       Image file on disk.
	 * @param array  $fields     Page fields: caption, caption_visible, context, lang, existing_alt, max_chars.
	 * @param string $request_id Sent as X-Request-Id so the service's log can be matched to WordPress.
	 * @return array|WP_Error The AltResult as an array, or an error.
	 */
	public function describe( $path, array $fields, $request_id = '' ) {
		if ( '' === $this->base ) {
			return new WP_Error( 'alttext_not_configured', __( 'The alttext service URL is not set.', 'alttext' ), array( 'retryable' => false ) );
		}
		$bytes = is_readable( $path ) ? file_get_contents( $path ) : false; // phpcs:ignore WordPress.WP.AlternativeFunctions.file_get_contents_file_get_contents -- local file.
		if ( false === $bytes ) {
			return new WP_Error( 'alttext_unreadable', __( 'The image file could not be read.', 'alttext' ), array( 'retryable' => false ) );
		}
		$boundary = 'alttext' . wp_generate_password( 24, false );
		$body     = '';
		foreach ( $fields as $name => $value ) {
			if ( null === $value || '' === $value ) {
				continue;
			}
			$body .= "--{$boundary}\r\nContent-Disposition: form-data; name=\"{$name}\"\r\n\r\n" . $value . "\r\n";
		}
		$filename = sanitize_file_name( wp_basename( $path ) );
		$mime     = wp_check_filetype( $filename );
		$body    .= "--{$boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{$filename}\"\r\n";
		$body    .= 'Content-Type: ' . ( $mime['type'] ? $mime['type'] : 'application/octet-stream' ) . "\r\n\r\n" . $bytes . "\r\n--{$boundary}--\r\n";

		return $this->request( '/v1/alt-text', 'multipart/form-data; boundary=' . $boundary, $body, $request_id );
	}

	/**
	 * Describes several images in one request (POST /v1/alt-text:batch).
	 *
	 * @param array $items BatchItem arrays (id, image_base64, caption, ...).
	 * @return array|WP_Error The list of ItemResult arrays in input order, or an error for the whole batch.
	 */
	public function describe_batch( array $items ) {
		if ( '' === $this->base ) {
			return new WP_Error( 'alttext_not_configured', __( 'The alttext service URL is not set.', 'alttext' ), array( 'retryable' => false ) );
		}
		$answer = $this->request( '/v1/alt-text:batch', 'application/json', wp_json_encode( array( 'items' => array_values( $items ) ) ), 'wp-backfill-' . time() );
		if ( is_wp_error( $answer ) ) {
			return $answer;
		}
		return isset( $answer['results'] ) && is_array( $answer['results'] ) ? $answer['results'] : new WP_Error( 'alttext_bad_answer', __( 'The service answered without results.', 'alttext' ), array( 'retryable' => true ) );
	}

	/**
	 * Sends one request and turns every failure into a WP_Error with retry hints.
	 *
	 * @param string $path         Path under the base URL.
	 * @param string $content_type Content-Type header.
	 * @param string $body         Request body.
	 * @param string $request_id   X-Request-Id header value.
	 * @return array|WP_Error
	 */
	private function request( $path, $content_type, $body, $request_id ) {
		$headers = array(
			'Content-Type' => $content_type,
			'Accept'       => 'application/json',
		);
		if ( '' !== $this->key ) {
			$headers['Authorization'] = 'Bearer ' . $this->key;
		}
		if ( '' !== $request_id ) {
			$headers['X-Request-Id'] = $request_id;
		}
		$response = wp_remote_post(
			$this->base . $path,
			array(
				'headers'     => $headers,
				'body'        => $body,
				'timeout'     => $this->timeout,
				'redirection' => 0,
			)
		);
		if ( is_wp_error( $response ) ) {
			$message = $response->get_error_message();
			$code    = false !== stripos( $message, 'timed out' ) ? 'timeout' : 'unreachable';
			/* translators: %s: error from the HTTP library. */
			return new WP_Error( 'alttext_' . $code, sprintf( __( 'The alttext service could not be reached: %s', 'alttext' ), $message ), array( 'retryable' => true ) );
		}
		$status = (int) wp_remote_retrieve_response_code( $response );
		$data   = json_decode( wp_remote_retrieve_body( $response ), true );
		if ( 200 === $status && is_array( $data ) ) {
			return $data;
		}
		$code    = isset( $data['error']['code'] ) ? (string) $data['error']['code'] : 'http_' . $status;
		$message = isset( $data['error']['message'] ) ? (string) $data['error']['message'] : wp_remote_retrieve_response_message( $response );
		$after   = wp_remote_retrieve_header( $response, 'retry-after' );
		// 429, 5xx and a broken answer may pass; 4xx is about the request or the image and will not.
		$retryable = 429 === $status || $status >= 500 || 200 === $status;
		return new WP_Error(
			'alttext_' . $code,
			/* translators: 1: HTTP status, 2: error code, 3: message from the service. */
			sprintf( __( 'The alttext service answered %1$d %2$s: %3$s', 'alttext' ), $status, $code, $message ),
			array(
				'status'      => $status,
				'retryable'   => $retryable,
				'retry_after' => is_numeric( $after ) ? (int) $after : null,
			)
		);
	}
}
